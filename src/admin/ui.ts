// The live topology page on the admin port: static files from src/admin/ui (no build step, no
// library), its state as JSON (/ui/state) and as server-sent events (/ui/events) that carry a part
// (services, nodes, diagnostics) only when its content changed.
import fs from 'node:fs';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { topologyParts, type TopologySources } from './topology.js';

const files: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'nodes.js': 'text/javascript; charset=utf-8',
  'services.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** Next to this module when run from src/ (tsx), or back in src/ when run from dist/src/admin (tsc emits no assets). */
function uiDirectory(): string | undefined {
  for (const candidate of ['./ui/', '../../../src/admin/ui/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (fs.existsSync(`${dir}index.html`)) return dir;
  }
  return undefined;
}

// Everything the page shows is data from clients and files: it never becomes markup (the page uses
// textContent), and this policy stops any script that is not the page's own file.
const pageHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/** How often connected pages are checked for node status changes (model changes go out at once). */
const pollMs = 250;

/** Unread event bytes one page may hold before it is dropped (a few full states at 1,000 Services). */
const maxBufferedBytes = 8 * 1024 * 1024;

type Part = 'services' | 'nodes' | 'diagnostics';

export class TopologyPage {
  private readonly clients = new Set<http.ServerResponse>();
  private readonly last: Record<Part, string> = { services: '', nodes: '', diagnostics: '' };
  private timer?: NodeJS.Timeout;
  private dir?: string | undefined;

  constructor(
    private readonly deps: TopologySources,
    private readonly server: http.Server,
  ) {
    deps.pipeline.onChange(() => {
      if (this.clients.size > 0) setImmediate(() => this.publish());
    });
  }

  /** Serves /ui, /ui/, /ui/FILE, /ui/state and /ui/events; false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
    if (pathname !== '/ui' && !pathname.startsWith('/ui/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('the topology page is read-only\n');
      return true;
    }
    const name = pathname === '/ui' || pathname === '/ui/' ? 'index.html' : pathname.slice('/ui/'.length);
    if (name === 'state') {
      const parts = topologyParts(this.deps);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
      res.end(`{"services":${parts.services},"nodes":${parts.nodes},"diagnostics":${parts.diagnostics}}\n`);
    } else if (name === 'events') this.subscribe(req, res);
    else if (Object.hasOwn(files, name)) {
      this.dir ??= uiDirectory();
      if (this.dir)
        res.writeHead(200, { 'content-type': files[name]!, ...pageHeaders }).end(fs.readFileSync(this.dir + name));
      else
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end('the /ui page files (src/admin/ui) are missing here\n');
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such page file: ${name.slice(0, 100)}\n`);
    return true;
  }

  private subscribe(req: http.IncomingMessage, res: http.ServerResponse): void {
    // `connection: close`: when the stream ends (the admin server is stopping), so does its connection,
    // instead of idling in keep-alive and holding up the server's close.
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'close',
      'x-content-type-options': 'nosniff',
    });
    // A new page gets every part now; the others only what changes from here on.
    const parts = topologyParts(this.deps);
    for (const part of ['services', 'nodes', 'diagnostics'] as const)
      res.write(`event: ${part}\ndata: ${parts[part]}\n\n`);
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
    this.timer ??= setInterval(() => this.publish(), pollMs).unref();
  }

  private publish(): void {
    if (!this.server.listening || this.clients.size === 0) {
      // The admin server is closing (it waits for open responses) or nobody is watching.
      for (const res of this.clients) res.end();
      this.clients.clear();
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const parts = topologyParts(this.deps);
    for (const part of ['services', 'nodes', 'diagnostics'] as const) {
      if (parts[part] === this.last[part]) continue;
      this.last[part] = parts[part];
      for (const res of this.clients) {
        // A page that stops reading is dropped rather than buffered for; on reconnect it gets everything.
        if (res.writableLength > maxBufferedBytes) res.end();
        else res.write(`event: ${part}\ndata: ${parts[part]}\n\n`);
      }
    }
  }
}
