/**
 * A WebSocket-to-TCP proxy that lets the Neon serverless driver reach an ordinary PostgreSQL
 * server, the role Neon's proxy plays in production. Tests, the benchmark and anyone who
 * wants to run the Neon driver path locally use it:
 *
 *   npx tsx scripts/neon-ws-proxy.ts --allow 127.0.0.1:5432 [--port 4444] [--latency-ms 5]
 *
 * prints the NEON_WS_PROXY value to give the service. It is not an open door to the database:
 * it listens on 127.0.0.1 only, forwards only to the `host:port` targets it was given, refuses
 * any request that carries an Origin header (a web page's WebSocket always sends one, so a
 * page in the developer's browser cannot reach a trust-auth PostgreSQL through it), and
 * requires a random token that only the URL it prints carries.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

export interface NeonWsProxy {
  /** The NEON_WS_PROXY value that reaches this proxy (token included). */
  readonly url: string;
  /** The address the listening socket is bound to, as the operating system reports it. */
  address(): AddressInfo;
  close(): Promise<void>;
}

interface NeonWsProxyOptions {
  /** `host:port` targets the proxy may connect to. */
  allow: readonly string[];
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Milliseconds added to every round trip (applied to traffic from PostgreSQL). */
  latencyMs?: number;
}

/** Starts a proxy on 127.0.0.1; it does not keep the process alive by itself. */
export async function startNeonWsProxy(options: NeonWsProxyOptions): Promise<NeonWsProxy> {
  const latencyMs = options.latencyMs ?? 0;
  const allow = new Set(options.allow);
  const token = randomBytes(16).toString("hex");
  const http = createServer();
  const server = new WebSocketServer({
    server: http,
    verifyClient: ({ req }: { req: { headers: Record<string, unknown>; url?: string } }) =>
      req.headers.origin === undefined && hasToken(req.url, token),
  });

  server.on("connection", (ws, request) => {
    const address = new URL(request.url ?? "/", "ws://proxy").searchParams.get("address") ?? "";
    const separator = address.lastIndexOf(":");
    const port = Number(address.slice(separator + 1));
    if (!allow.has(address) || !Number.isInteger(port)) {
      ws.close(1008, "address not allowed");
      return;
    }
    const tcp = connect({ host: address.slice(0, separator), port, noDelay: true });
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
    http.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  http.unref();
  const bound = http.address();
  if (typeof bound !== "object" || bound === null) throw new Error("proxy did not bind");
  return {
    url: `ws://127.0.0.1:${bound.port}/v2?token=${token}`,
    address: () => http.address() as AddressInfo,
    async close() {
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function hasToken(url: string | undefined, token: string): boolean {
  const given = Buffer.from(new URL(url ?? "/", "ws://proxy").searchParams.get("token") ?? "");
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      allow: { type: "string", multiple: true, default: ["127.0.0.1:5432"] },
      port: { type: "string", default: "0" },
      "latency-ms": { type: "string", default: "0" },
    },
  });
  const proxy = await startNeonWsProxy({
    allow: values.allow,
    port: Number(values.port),
    latencyMs: Number(values["latency-ms"]),
  });
  // Stay up until stopped: the listening socket was unref'd for library use.
  setInterval(() => {}, 1 << 30);
  console.log(`NEON_WS_PROXY=${proxy.url}`);
}
