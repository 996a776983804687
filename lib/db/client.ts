/**
 * The one module that connects to the database. It connects lazily, on first use, never on
 * import, and keeps one connection per process:
 * - `DATABASE_URL` set: a pool of the Neon serverless driver (Postgres over WebSockets).
 *   Neon hosts are reached through Neon's proxy; any other Postgres server through a
 *   WebSocket-to-TCP bridge started in this process.
 * - unset: embedded PGlite in `PGLITE_DIR`, migrated when opened. Never on Vercel, where
 *   its data would vanish with the instance.
 */
import { fileURLToPath } from "node:url";
import { attachDatabasePool } from "@vercel/functions";
import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { type Config, getConfig } from "../config.js";
import { DatabaseUnavailableError } from "../errors.js";
import { log } from "../log.js";
import * as schema from "./schema.js";
import type { WsBridge } from "./ws-bridge.js";

/** The driver-agnostic database type every query function takes. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** An open database: the Drizzle handle plus what only the owner of the connection can do. */
export interface Connection {
  readonly db: Database;
  /** "postgres" (Neon driver) or "pglite" (embedded). */
  readonly kind: "postgres" | "pglite";
  /** Applies pending migrations from drizzle/. Safe to run concurrently from many processes. */
  migrate(): Promise<void>;
  /** Closes the pool (or the embedded database). */
  close(): Promise<void>;
}

const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** Session advisory lock that serializes migration runs across processes. */
const MIGRATION_LOCK_KEY = 7_104_286_113;

let current: Promise<Connection> | undefined;

/** The process-wide connection, opened on first call. A failed open is retried next time. */
export function getConnection(): Promise<Connection> {
  if (!current) {
    current = openConnection(getConfig());
    current.catch(() => {
      current = undefined;
    });
  }
  return current;
}

/** The process-wide Drizzle database, opened on first call. */
export async function getDatabase(): Promise<Database> {
  return (await getConnection()).db;
}

/** Closes the process-wide connection, if one was opened (scripts and tests call this). */
export async function closeDatabase(): Promise<void> {
  const open = current;
  current = undefined;
  if (open) await (await open.catch(() => undefined))?.close();
}

/** Opens a new connection for the given configuration (not shared; the caller closes it). */
export async function openConnection(config: Config): Promise<Connection> {
  if (config.DATABASE_URL) return openPostgres(config.DATABASE_URL, config);
  if (config.VERCEL) {
    throw new DatabaseUnavailableError(
      "DATABASE_URL is not set on this Vercel deployment; refusing to use the embedded database",
    );
  }
  return openPglite(config.PGLITE_DIR, config.PGLITE_LOCK_WAIT_MS);
}

/** Runs a raw statement and returns its rows, whichever driver is underneath. */
export async function queryRows<Row>(db: Database, statement: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(statement);
  const rows = (result as { rows?: unknown }).rows;
  if (!Array.isArray(rows)) throw new Error("The database driver returned no rows array");
  return rows as Row[];
}

/**
 * The process's one local bridge. neonConfig is global to the driver, so every pool in the
 * process shares it; it lives as long as the process and never keeps it alive by itself.
 */
const bridgeTargets = new Set<string>();
let bridge: Promise<WsBridge> | undefined;

async function localBridgePort(target: string, config: Config): Promise<number> {
  bridgeTargets.add(target);
  if (!bridge) {
    const { startWsBridge } = await import("./ws-bridge.js");
    bridge = startWsBridge({ allow: bridgeTargets, latencyMs: config.LOCAL_BRIDGE_LATENCY_MS });
  }
  return (await bridge).port;
}

/** Hosts served by Neon's own WebSocket proxy; everything else needs the local bridge. */
const isNeonHost = (hostname: string) => /\.neon\.(tech|build)$/i.test(hostname);

async function openPostgres(url: string, config: Config): Promise<Connection> {
  const [{ Pool, neonConfig }, { drizzle }, { migrate }, ws] = await Promise.all([
    import("@neondatabase/serverless"),
    import("drizzle-orm/neon-serverless"),
    import("drizzle-orm/neon-serverless/migrator"),
    import("ws"),
  ]);
  // Node 20 has no global WebSocket; later versions do, and ws works everywhere.
  neonConfig.webSocketConstructor = ws.default;
  // Coalescing flushes the driver's writes from a setTimeout(0), which on Node waits at least
  // 1 ms: it added 1.1 ms to every query here (select 1: 1.3 ms coalesced, 0.17 ms not).
  // The messages of a query still leave back to back, so it remains one round trip.
  neonConfig.coalesceWrites = false;

  const { hostname, port } = new URL(url);
  if (!isNeonHost(hostname)) {
    const bridgePort = await localBridgePort(`${hostname}:${port || "5432"}`, config);
    neonConfig.wsProxy = (host, targetPort) =>
      `127.0.0.1:${bridgePort}/v2?address=${host}:${targetPort}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }

  const pool = new Pool({
    connectionString: url,
    max: config.DB_POOL_MAX,
    connectionTimeoutMillis: config.DB_CONNECT_TIMEOUT_MS,
    query_timeout: config.DB_QUERY_TIMEOUT_MS || undefined,
  });
  // An idle client whose connection drops must not crash the process; the pool replaces it.
  pool.on("error", (error: Error) =>
    log("warn", "idle database connection failed", { error: error.message }),
  );
  attachDatabasePool(pool);
  const db = drizzle({ client: pool, schema });

  return {
    db,
    kind: "postgres",
    async migrate() {
      // One client for the whole run: a session lock only holds on its own connection.
      const client = await pool.connect();
      try {
        await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
        await migrate(drizzle({ client, schema }), { migrationsFolder: MIGRATIONS_FOLDER });
      } finally {
        await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => {});
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string, lockWaitMs: number): Promise<Connection> {
  const [{ PGlite }, { drizzle }, { migrate }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
    import("drizzle-orm/pglite/migrator"),
  ]);
  const unlock = dataDir.startsWith("memory://")
    ? async () => {}
    : await lockDataDir(dataDir, lockWaitMs);
  let client: InstanceType<typeof PGlite>;
  try {
    client = await PGlite.create(dataDir);
  } catch (error) {
    await unlock();
    throw error;
  }
  const db = drizzle({ client, schema });
  const connection: Connection = {
    db,
    kind: "pglite",
    migrate: () => migrate(db, { migrationsFolder: MIGRATIONS_FOLDER }),
    async close() {
      await client.close();
      await unlock();
    },
  };
  // The embedded database has no deploy step, so it is brought up to date when opened.
  await connection.migrate();
  return connection;
}

/**
 * PGlite is a single-process database: two processes writing one folder corrupt it (and
 * `vercel dev` runs every request in a process of its own). A lock file beside the folder
 * makes other processes wait their turn, up to `waitMs`, then fail with a clear 503.
 */
async function lockDataDir(dataDir: string, waitMs: number): Promise<() => Promise<void>> {
  const [{ mkdir }, { lock }] = await Promise.all([
    import("node:fs/promises"),
    import("proper-lockfile"),
  ]);
  await mkdir(dataDir, { recursive: true });
  const intervalMs = 250;
  try {
    return await lock(dataDir, {
      realpath: false,
      // A process killed while holding the lock stops refreshing it; it is stale after this.
      stale: 10_000,
      retries: { retries: Math.ceil(waitMs / intervalMs), factor: 1, minTimeout: intervalMs },
      onCompromised: (error) =>
        log("error", "lost the embedded database lock", { dataDir, error: error.message }),
    });
  } catch (error) {
    if ((error as { code?: string }).code !== "ELOCKED") throw error;
    throw new DatabaseUnavailableError(
      `The embedded database in ${dataDir} is in use by another process; stop it or set PGLITE_DIR to another folder`,
      { cause: error },
    );
  }
}
