// The file source's parser thread. Parsing a large YAML file takes seconds and many times its size in
// memory, so it happens here, one file at a time, and only the objects the model reads come back: the
// main thread keeps answering Envoys, probes and signals meanwhile. It keeps nothing between files: the
// main thread says which documents it already holds.
import { parentPort } from 'node:worker_threads';
import { isModelObject } from '../model/objects.js';
import { loadYamlFile } from './file-load.js';

export interface ParseRequest {
  id: number;
  file: string;
  maxBytes: number;
  /** Hashes of the document runs the main thread holds: they are not parsed or sent again. */
  known: string[];
}

parentPort?.on('message', (request: ParseRequest) => {
  parentPort!.postMessage({
    id: request.id,
    parsed: loadYamlFile(request.file, request.maxBytes, new Set(request.known), isModelObject),
  });
});
