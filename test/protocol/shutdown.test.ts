// Stopping the server: open streams end with UNAVAILABLE (so Envoys reconnect elsewhere) and no new
// stream is accepted.
import { describe, expect, it } from 'vitest';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

describe('stop', () => {
  it('ends open ADS streams with UNAVAILABLE, promptly, and refuses new ones', async () => {
    const shim = await startShim({
      'a.yaml': serviceYaml({ name: 'a', namespace: 's', clusterIP: '10.96.4.1', port: 7301 }),
    });
    const c = new AdsClient(shim.xdsAddress, { id: 'stopping', metadata: originateMeta });
    try {
      c.send('cluster');
      await c.next('cluster');
      const started = Date.now();
      await shim.shim.stop();
      expect(Date.now() - started).toBeLessThan(2000);
      const err = await waitFor('stream error', () => c.error, 5000);
      expect(err.code).toBe(14);
      expect(err.details).toContain('control plane shutting down; reconnect');
      const late = new AdsClient(shim.xdsAddress, { id: 'late', metadata: originateMeta });
      late.send('cluster');
      expect((await waitFor('refused', () => late.error, 5000)).code).toBe(14);
      late.close();
    } finally {
      c.close();
    }
  });
});
