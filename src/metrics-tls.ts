// /metrics for certificates: seconds until each identity's certificate expires, read at scrape time.
import { Gauge, type Registry } from 'prom-client';
import type { Pipeline } from './pipeline.js';

export function certificateExpiryGauge(registry: Registry, prefix: string, pipeline: Pipeline): void {
  new Gauge({
    name: `${prefix}certificate_expiry_seconds`,
    help: 'Seconds until the certificate the shim serves for an identity expires (negative: expired)',
    labelNames: ['identity', 'secret'],
    registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const [identity, cert] of pipeline.model?.tls?.identities ?? []) {
        const secret = `${cert.secret.namespace}/${cert.secret.name}`;
        this.set({ identity, secret }, Math.round((cert.notAfter - now) / 1000));
      }
    },
  });
}
