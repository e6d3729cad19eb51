// Runs named echo servers until killed; started inside a test's network namespace.
import { startEcho } from './net.js';

const servers = JSON.parse(process.argv[2] ?? '[]') as { address: string; port: number; name: string }[];
await Promise.all(servers.map((s) => startEcho(s.address, s.port, s.name)));
process.stdout.write('ready\n');
