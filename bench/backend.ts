// The data-plane benchmark's backend: 'T' + 8-byte length: swallow that many bytes, then answer 'k';
// 'E': echo everything. Run as a script (`backend.js ADDRESS`) it serves in its own process, which
// is how it gets into a network namespace; it prints its port once listening.
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export async function backend(host = '127.0.0.2'): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    let mode = '';
    let want = 0;
    let got = 0;
    let head = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (mode === 'E') return void s.write(d);
      if (mode === 'T') {
        got += d.length;
        if (got >= want) s.write('k');
        return;
      }
      head = Buffer.concat([head, d]);
      if (head[0] === 0x45) {
        mode = 'E';
        s.write(head);
      } else if (head.length >= 9) {
        mode = 'T';
        want = Number(head.readBigUInt64BE(1));
        got = head.length - 9;
        if (got >= want) s.write('k');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const be = await backend(process.argv[2]);
  process.stdout.write(`port ${be.port}\n`);
  // Ends with its parent: the benchmark holds stdin open.
  process.stdin.on('end', () => process.exit(0)).resume();
}
