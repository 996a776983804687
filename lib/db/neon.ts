/**
 * The Neon serverless driver: PostgreSQL over WebSockets, which is what a Vercel Function
 * should use against Neon (no TCP connection setup per cold start beyond one WebSocket).
 * Neon hosts are reached through Neon's own proxy; any other server only through a WebSocket
 * proxy the operator runs and names in NEON_WS_PROXY (scripts/neon-ws-proxy.ts is one).
 */

import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import ws from "ws";
import type { DriverConnection } from "./database.js";
import type { DatabaseUrl } from "./database-url.js";
import { type PoolSettings, poolOptions, watchPool } from "./pool.js";
import * as schema from "./schema.js";

/** Opens a pool of the Neon driver; `proxy` routes it through a self-run WebSocket proxy. */
export function openNeon(url: DatabaseUrl, pool: PoolSettings, proxy?: URL): DriverConnection {
  // Node 20 has no global WebSocket; later versions do, and ws works everywhere.
  neonConfig.webSocketConstructor = ws;
  // Coalescing flushes the driver's writes from a setTimeout(0), which on Node waits at least
  // 1 ms: it added 1.1 ms to every query (select 1: 1.3 ms coalesced, 0.17 ms not). The
  // messages of a query still leave back to back, so it remains one round trip.
  neonConfig.coalesceWrites = false;
  if (proxy) {
    const base = `${proxy.host}${proxy.pathname.replace(/\/$/, "")}`;
    const token = proxy.searchParams.get("token");
    neonConfig.wsProxy = (host, port) =>
      `${base}?address=${host}:${port}${token ? `&token=${encodeURIComponent(token)}` : ""}`;
    // wss:// is encrypted end to end to the proxy; ws:// is accepted on loopback only (config).
    neonConfig.useSecureWebSocket = proxy.protocol === "wss:";
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  // href: every parameter once, as the configuration checked them (database-url.ts).
  const client = new Pool(poolOptions(url.href, pool));
  watchPool(client);
  return { db: drizzle({ client, schema }), close: () => client.end() };
}
