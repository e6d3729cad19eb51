import type { Diagnostic } from '../model/diagnostics.js';
import type { SourcedObject } from '../model/objects.js';

/** What a source currently holds: every object it knows, plus problems it found reading them. */
export interface SourceState {
  objects: SourcedObject[];
  diagnostics: Diagnostic[];
  /**
   * false: the source has not read everything yet (e.g. the API server refuses a list) and reports only
   * its problems; nothing is built or served from such a state.
   */
  complete?: boolean;
}

export interface Source {
  /** Resolves once the first complete state was delivered (the source has synced). */
  start(onChange: (state: SourceState) => void): Promise<void>;
  stop(): Promise<void>;
  describe(): string;
}
