// The `tunnel-shim.io/*` annotations a Service carries, each parsed into a setting or a clear error.
import type { TunnelMode, TunnelSettings, Placement } from './tunnel.js';

export const annotationPrefix = 'tunnel-shim.io/';
export const Annotation = {
  tunnel: 'tunnel-shim.io/tunnel',
  tunnelPort: 'tunnel-shim.io/tunnel-port',
  placement: 'tunnel-shim.io/placement',
} as const;

export const defaultTunnelPort = 15008;

const modes: readonly TunnelMode[] = ['h2', 'h1', 'h2-post'];
const placements: readonly Placement[] = ['sidecar', 'gateway'];

export interface AnnotationError {
  annotation: string;
  message: string;
}

export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text.trim())) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Parses the tunnel settings of a Service; `undefined` settings means the Service is not tunneled. */
export function parseTunnelSettings(annotations: Record<string, string>): { settings?: TunnelSettings; errors: AnnotationError[] } {
  const errors: AnnotationError[] = [];
  const modeText = annotations[Annotation.tunnel];
  if (modeText === undefined) {
    const stray = Object.keys(annotations).filter((k) => k.startsWith(annotationPrefix));
    for (const annotation of stray) {
      errors.push({ annotation, message: `has no effect without ${Annotation.tunnel}` });
    }
    return { errors };
  }
  const mode = modeText.trim() === '' ? 'h2' : (modeText.trim() as TunnelMode);
  if (!modes.includes(mode)) {
    errors.push({ annotation: Annotation.tunnel, message: `unknown tunnel mode ${JSON.stringify(modeText)}; use one of ${modes.join(', ')}` });
  }
  let tunnelPort = defaultTunnelPort;
  const portText = annotations[Annotation.tunnelPort];
  if (portText !== undefined) {
    const port = parsePort(portText);
    if (port === undefined) errors.push({ annotation: Annotation.tunnelPort, message: `${JSON.stringify(portText)} is not a port (1-65535)` });
    else tunnelPort = port;
  }
  let placement: Placement = 'sidecar';
  const placementText = annotations[Annotation.placement];
  if (placementText !== undefined) {
    if (placements.includes(placementText as Placement)) placement = placementText as Placement;
    else errors.push({ annotation: Annotation.placement, message: `unknown placement ${JSON.stringify(placementText)}; use one of ${placements.join(', ')}` });
  }
  const known = new Set<string>(Object.values(Annotation));
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(annotationPrefix) && !known.has(key)) errors.push({ annotation: key, message: 'is not a tunnel-shim annotation' });
  }
  return { settings: { mode, tunnelPort, placement }, errors };
}
