// Which authorities a tunnel answers to: its virtual host domains on terminators and relays, and what
// the model checks for clashes between Services.
import type { Tunnel } from './tunnel.js';

/** The authorities a terminator or relay accepts for a tunnel (one virtual host's domains). */
export function domainsOf(t: Tunnel): string[] {
  // A TCPRoute backend is named by its own authority (the split's hostname reads it from the cluster).
  if (t.via) return [t.authority];
  return t.settings.domains ?? [t.settings.hostname ?? t.authority];
}
