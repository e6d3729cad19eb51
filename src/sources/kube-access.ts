// Requests the API server refuses (401 Unauthorized, 403 Forbidden), per verb and resource: each is a
// source diagnostic naming both (so it shows in logs, /debug/diagnostics and the source_errors and
// source_access_denied metrics) until that resource lists again.
import type { Diagnostic } from '../model/diagnostics.js';
import { errorMessage } from '../errors.js';

/** The object kind of these diagnostics: the resource is the name, the verb the field. */
export const apiResourceKind = 'APIResource';

/** The HTTP status of a client-node error: ApiException has `code`, a failed watch `statusCode`. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  const code = typeof e?.code === 'number' ? e.code : e?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export const isAccessDenied = (err: unknown) => statusOf(err) === 401 || statusOf(err) === 403;

/** The API server's own explanation (a Status object's message), else the error's first line. */
function reasonOf(err: unknown): string {
  let body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not a Status object
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : errorMessage(err).split('\n')[0]!;
}

export class AccessDenials {
  private readonly denied = new Map<string, Diagnostic>();

  /** Remembers `err` if it is a 401 or 403; returns whether it was one. */
  record(verb: 'list' | 'watch', resource: string, namespace: string | undefined, err: unknown): boolean {
    if (!isAccessDenied(err)) return false;
    const code = statusOf(err)!;
    const scope = namespace ? `in namespace ${namespace}` : 'in all namespaces';
    const reason = code === 401 ? 'Unauthorized' : 'Forbidden';
    this.denied.set(`${verb} ${resource} ${namespace ?? ''}`, {
      severity: 'error',
      reason,
      object: { kind: apiResourceKind, namespace: namespace ?? '', name: resource },
      path: [verb],
      message: `${code} ${reason} ${scope}: ${reasonOf(err)}; retrying with backoff`,
    });
    return true;
  }

  /** The resource listed: every denial of it (list and watch) is over. Returns whether any was. */
  clear(resource: string, namespace: string | undefined): boolean {
    let cleared = false;
    for (const verb of ['list', 'watch']) {
      cleared = this.denied.delete(`${verb} ${resource} ${namespace ?? ''}`) || cleared;
    }
    return cleared;
  }

  diagnostics(): Diagnostic[] {
    return [...this.denied.values()];
  }
}
