// Runs the CLI from TypeScript sources (tsx), for development and tests.
import { main } from './main.js';

await main(process.argv);
