/**
 * A TCP proxy in front of PostgreSQL that holds every chunk the server sends for `delayMs`
 * (changeable while it runs), so each round trip costs that much more: the database moved
 * that far away, for any driver. Chunks keep their order (timers of one delay fire in order).
 */
import { connect, createServer, type Socket } from "node:net";

export interface DelayProxy {
  /** 127.0.0.1 port to put in a DATABASE_URL instead of the server's. */
  readonly port: number;
  delayMs: number;
  close(): Promise<void>;
}

export async function startDelayProxy(host: string, port: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const proxy = { port: 0, delayMs: 0, close: async () => {} };
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => (socket === client ? upstream : client).destroy());
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (proxy.delayMs === 0) client.write(chunk);
      else setTimeout(() => client.write(chunk), proxy.delayMs);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => setTimeout(() => client.destroy(), proxy.delayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("proxy has no port");
  proxy.port = address.port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
