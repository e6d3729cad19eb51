// Loopback sockets for tests: free ports, echo backends, clients that prove bytes came back.
import net from 'node:net';

/** Ports this process has handed out: the kernel may offer a port again once it is closed. */
const handedOut = new Set<number>();

/**
 * Ports below the kernel's ephemeral range (32768-60999 here): a port picked there and released could
 * be handed by the kernel to the next socket bound to port 0, such as an Envoy's admin port, before
 * the test binds it (an originator's listener then failed with "address in use" and the test talked
 * to Envoy's admin). Nothing takes a port from below that range unless asked for it by number.
 */
const firstPort = 10_000;
const lastPort = 32_767;

/** A port free on `host` now, never one this process handed out before (tests give each its own). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 1000; tries++) {
    const port = firstPort + Math.floor(Math.random() * (lastPort - firstPort + 1));
    if (handedOut.has(port)) continue;
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) =>
      server.once('error', () => resolve(false)).listen(port, host, () => resolve(true)),
    );
    if (!free) continue;
    await new Promise((r) => server.close(r));
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port on ${host} between ${firstPort} and ${lastPort} after 1,000 tries`);
}

export interface EchoServer {
  host: string;
  port: number;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** Echoes every byte back; with `name`, first writes `name\n` so a client can tell backends apart. */
export async function startEcho(host: string, port = 0, name?: string): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const echo: EchoServer = { host, port, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    echo.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (name) socket.write(`${name}\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  echo.port = (server.address() as net.AddressInfo).port;
  echo.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return echo;
}

/** A client connection that collects what it reads. */
export class Client {
  received = '';
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => (this.received += d.toString()));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  /** `localAddress` picks the source IP (any 127.0.0.0/8 address on loopback). */
  static async connect(port: number, host = '127.0.0.1', timeoutMs = 5000, localAddress?: string): Promise<Client> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connect ${host}:${port} timed out`)), timeoutMs);
      socket.once('connect', () => (clearTimeout(timer), resolve()));
      socket.once('error', (e) => (clearTimeout(timer), reject(e)));
    });
    return new Client(socket);
  }

  /** Writes `text` and waits until the received bytes include it. */
  async echo(text: string, timeoutMs = 5000): Promise<string> {
    const before = this.received.length;
    this.socket.write(text);
    const deadline = Date.now() + timeoutMs;
    while (!this.received.slice(before).includes(text)) {
      if (this.closed)
        throw new Error(`connection closed before "${text}" came back (got ${JSON.stringify(this.received)})`);
      if (Date.now() > deadline)
        throw new Error(`"${text}" did not come back within ${timeoutMs} ms (got ${JSON.stringify(this.received)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.received;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Opens a connection, checks one echo round trip, closes. Returns everything received. */
export async function roundTrip(
  port: number,
  text = `ping-${Math.random().toString(36).slice(2)}\n`,
  host = '127.0.0.1',
  localAddress?: string,
): Promise<string> {
  const client = await Client.connect(port, host, 5000, localAddress);
  try {
    return await client.echo(text);
  } finally {
    client.close();
  }
}
