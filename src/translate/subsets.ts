// Endpoint subsets from Pod labels (tunnel-shim.io/metadata-match): the cluster that picks the
// endpoint gets lb_subset_config, its endpoints carry the labels it selects on under `envoy.lb`, and
// the picker (tcp_proxy or route) asks for the labels in metadata_match.
import type { ResourceObject } from '../envoy/encode.js';
import type { TunnelSettings } from '../model/tunnel.js';

function subsetKeys(s: TunnelSettings): string[] {
  return [...new Set([...Object.keys(s.metadataMatch ?? {}), ...Object.keys(s.defaultSubset ?? {})])].sort();
}

export function subsetConfig(s: TunnelSettings): ResourceObject | undefined {
  if (!s.metadataMatch) return undefined;
  return {
    fallback_policy: s.fallbackPolicy ?? 'NO_FALLBACK',
    ...(s.defaultSubset ? { default_subset: s.defaultSubset } : {}),
    subset_selectors: [{ keys: Object.keys(s.metadataMatch).sort() }],
  };
}

/** Only the label keys the subsets use: every other Pod label stays out of the config. */
export function endpointMetadata(
  s: TunnelSettings,
  labels: Record<string, string> | undefined,
): ResourceObject | undefined {
  if (!s.metadataMatch || !labels) return undefined;
  const picked = Object.fromEntries(
    subsetKeys(s)
      .filter((k) => labels[k] !== undefined)
      .map((k) => [k, labels[k]!]),
  );
  return Object.keys(picked).length ? { filter_metadata: { 'envoy.lb': picked } } : undefined;
}

export function lbMetadataMatch(s: TunnelSettings): ResourceObject | undefined {
  return s.metadataMatch ? { filter_metadata: { 'envoy.lb': s.metadataMatch } } : undefined;
}
