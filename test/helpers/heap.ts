// The heap a test process keeps after a full garbage collection, for bounds on memory left behind.
import v8 from 'node:v8';
import vm from 'node:vm';
import { sleep } from './wait.js';

v8.setFlagsFromString('--expose-gc');
const gc = ((globalThis as { gc?: () => void }).gc ?? vm.runInNewContext('gc')) as () => void;

/** Heap plus ArrayBuffer bytes (request copies live there) after collecting until it settles. */
export async function retainedBytes(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(25);
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
