// The node view moved to envoy/node-view.ts (translate, cache and xds all read it); translate's own imports.
export * from '../envoy/node-view.js';
