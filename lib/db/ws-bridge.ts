/**
 * A WebSocket-to-TCP bridge: lets the Neon serverless driver, which speaks Postgres over
 * WebSockets, reach an ordinary PostgreSQL server. In production Neon's proxy plays this
 * role; locally the database module starts one of these in-process on 127.0.0.1.
 *
 * It only forwards to the addresses it was told to allow, so it is never an open proxy, and
 * it can add a fixed delay to every round trip to show what a function far from its
 * database experiences (used by the benchmark).
 */
import { createServer } from "node:http";
import { connect } from "node:net";
import { WebSocketServer } from "ws";

export interface WsBridge {
  /** Port on 127.0.0.1 the bridge listens on. */
  readonly port: number;
}

export interface WsBridgeOptions {
  /** `host:port` targets the bridge may connect to (read on every connection). */
  allow: ReadonlySet<string>;
  /** Milliseconds added to every round trip (applied to traffic from Postgres). */
  latencyMs?: number;
}

/**
 * Starts a bridge on an ephemeral port of 127.0.0.1 for the life of the process. It does not
 * keep the process alive by itself: open database connections do, and it serves them until
 * they close.
 */
export async function startWsBridge(options: WsBridgeOptions): Promise<WsBridge> {
  const latencyMs = options.latencyMs ?? 0;
  const http = createServer();
  const server = new WebSocketServer({ server: http });

  server.on("connection", (ws, request) => {
    const address = new URL(request.url ?? "/", "ws://bridge").searchParams.get("address") ?? "";
    const separator = address.lastIndexOf(":");
    const host = address.slice(0, separator);
    const port = Number(address.slice(separator + 1));
    if (!options.allow.has(address) || !Number.isInteger(port)) {
      ws.close(1008, "address not allowed");
      return;
    }
    const tcp = connect({ host, port, noDelay: true });
    const closeBoth = () => {
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };

    ws.on("message", (data: Buffer) => tcp.write(data));
    ws.on("close", closeBoth);
    ws.on("error", closeBoth);
    tcp.on("data", (chunk) => {
      const send = () => {
        if (ws.readyState === ws.OPEN) ws.send(chunk);
      };
      // Equal delays fire in insertion order, so the byte stream stays in order.
      if (latencyMs > 0) setTimeout(send, latencyMs);
      else send();
    });
    tcp.on("close", () => setTimeout(closeBoth, latencyMs));
    tcp.on("error", closeBoth);
  });

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(0, "127.0.0.1", resolve);
  });
  http.unref();
  const bound = http.address();
  if (typeof bound !== "object" || bound === null) throw new Error("bridge did not bind");

  return { port: bound.port };
}
