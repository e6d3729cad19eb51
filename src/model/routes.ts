// Gateway API TCPRoutes whose parent is a Service (the east-west, mesh-style attachment): they split
// the parent's tunneled traffic across backend Services by weight. Pure, like the rest of the model.
import { TCPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute';
import type { Diagnostic } from './diagnostics.js';
import { refOf, type FieldPath, type SourcedObject } from './objects.js';
import { checkDnsLabel } from './values.js';
import { errorMessage } from '../errors.js';

export interface BackendRef {
  namespace: string;
  name: string;
  port: number;
  weight: number;
  /** Where this ref sits in the route, for diagnostics. */
  path: FieldPath;
}

/** One route attached to one parent Service (and port, when the parentRef names one). */
export interface ServiceRoute {
  route: SourcedObject;
  parentNamespace: string;
  parentName: string;
  parentPort?: number;
  backends: BackendRef[];
}

interface RawRef {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
}

function diag(
  route: SourcedObject,
  severity: Diagnostic['severity'],
  reason: string,
  path: FieldPath,
  message: string,
): Diagnostic {
  return { severity, reason, object: refOf(route.object), path, message, origin: route.origin };
}

/** Validates a TCPRoute against the Gateway API schema and returns its Service attachments. */
export function parseRoute(route: SourcedObject): { attachments: ServiceRoute[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const o = route.object;
  try {
    // The v1 TCPRoute has the same shape as v1alpha2, whose compiled schema the package ships.
    new TCPRoute({ ...(o as object), apiVersion: 'gateway.networking.k8s.io/v1alpha2' } as never).validate();
  } catch (err) {
    const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors ?? [];
    for (const e of errors.length ? errors : [{ instancePath: '', message: errorMessage(err) }]) {
      const path = e.instancePath
        .split('/')
        .filter(Boolean)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      diagnostics.push(diag(route, 'error', 'InvalidRoute', path, e.message ?? 'invalid'));
    }
    return { attachments: [], diagnostics };
  }
  const namespace = o.metadata?.namespace ?? 'default';
  const spec = (o.spec ?? {}) as { parentRefs?: RawRef[]; rules?: { backendRefs?: RawRef[] }[] };
  const rules = spec.rules ?? [];
  if (rules.length > 1)
    diagnostics.push(
      diag(route, 'warning', 'MultipleRules', ['spec', 'rules'], 'only the first rule of a TCPRoute is used'),
    );
  const backends: BackendRef[] = [];
  (rules[0]?.backendRefs ?? []).forEach((ref, i) => {
    const path: FieldPath = ['spec', 'rules', 0, 'backendRefs', i];
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') {
      diagnostics.push(
        diag(
          route,
          'error',
          'UnsupportedBackend',
          [...path, 'kind'],
          `only Service backends are supported, not ${ref.group ?? ''}/${ref.kind}`,
        ),
      );
      return;
    }
    if ((ref.namespace ?? namespace) !== namespace) {
      diagnostics.push(
        diag(
          route,
          'error',
          'CrossNamespaceBackend',
          [...path, 'namespace'],
          'backends in another namespace need a ReferenceGrant, which the shim does not support yet',
        ),
      );
      return;
    }
    if (ref.port === undefined) {
      diagnostics.push(diag(route, 'error', 'MissingPort', [...path, 'port'], 'a Service backend needs a port'));
      return;
    }
    // The backend's name becomes the CONNECT authority of its share.
    const badName = checkDnsLabel(ref.name ?? '');
    if (badName) {
      diagnostics.push(diag(route, 'error', 'InvalidBackend', [...path, 'name'], badName));
      return;
    }
    backends.push({ namespace, name: ref.name!, port: ref.port, weight: ref.weight ?? 1, path });
  });
  const attachments: ServiceRoute[] = [];
  (spec.parentRefs ?? []).forEach((parent, i) => {
    const isService = (parent.group ?? 'gateway.networking.k8s.io') === '' && parent.kind === 'Service';
    if (!isService) {
      diagnostics.push(
        diag(
          route,
          'warning',
          'ForeignParent',
          ['spec', 'parentRefs', i],
          `parent ${parent.kind ?? 'Gateway'} ${parent.name} is not a Service; the shim leaves Gateway parents ` +
            `to their own controller`,
        ),
      );
      return;
    }
    attachments.push({
      route,
      parentNamespace: parent.namespace ?? namespace,
      parentName: parent.name!,
      parentPort: parent.port,
      backends,
    });
  });
  return { attachments, diagnostics };
}
