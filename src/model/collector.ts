// Collects the diagnostics found in one object, each naming it, its field and where it came from.
import type { Diagnostic } from './diagnostics.js';
import { refOf, type FieldPath, type SourcedObject } from './objects.js';

export class Collector {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly current: SourcedObject) {}
  error(reason: string, path: FieldPath, message: string) {
    this.diagnostics.push({
      severity: 'error',
      reason,
      object: refOf(this.current.object),
      path,
      message,
      origin: this.current.origin,
    });
  }
  warn(reason: string, path: FieldPath, message: string) {
    this.diagnostics.push({
      severity: 'warning',
      reason,
      object: refOf(this.current.object),
      path,
      message,
      origin: this.current.origin,
    });
  }
}
