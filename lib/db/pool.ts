/**
 * What the two network drivers' pools share: their limits, and how an open pool is watched.
 * The Neon driver's Pool is node-postgres's API, so one shape serves both.
 */
import { attachDatabasePool } from "@vercel/functions";
import { log } from "../log.js";

/** Pool limits shared by both network drivers. */
export interface PoolSettings {
  max: number;
  connectTimeoutMs: number;
  /** Client-side limit on one query; 0 = none. */
  queryTimeoutMs: number;
}

/** The pool options both drivers take, for `url`. */
export function poolOptions(url: string, settings: PoolSettings) {
  return {
    connectionString: url,
    max: settings.max,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    query_timeout: settings.queryTimeoutMs || undefined,
  };
}

/** A pool as attachDatabasePool and its error event see it. */
type WatchablePool = Parameters<typeof attachDatabasePool>[0] & {
  on(event: "error", listener: (error: Error) => void): unknown;
};

/**
 * An idle client whose connection drops must not crash the process (the pool replaces it),
 * and on Vercel the instance should close idle connections before it is suspended.
 */
export function watchPool(pool: WatchablePool): void {
  pool.on("error", (error) =>
    log("warn", "idle database connection failed", { error: error.message }),
  );
  attachDatabasePool(pool);
}
