/**
 * The bench's databases on the target server, one per implementation and section, created
 * fresh (dropped first) through the admin URL; and the database time of the implementation's
 * function, read from pg_stat_user_functions.
 *
 * Why pg_stat_user_functions and not pg_stat_statements: pg_stat_statements needs the server
 * to preload it (a restart), which a shared server may not have; function statistics need
 * only `track_functions = 'pl'`, which the bench sets on its own databases. Each request is
 * one call of one PL/pgSQL function, whose total_time includes everything it runs; that it is
 * one statement per request is counted apart, where pg_stat_statements allows (statements.ts).
 */
import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { readConfig } from "../lib/config.js";
import { type Connection, openConnection } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";
import type { Implementation } from "./server.js";

/** The function each implementation calls once per request. */
const FUNCTION_OF: Record<Implementation, string> = {
  ours: "identify_contact",
  minimal: "minimal_identify",
};

/** A bench-side connection: no query timeout (bulk loads take long), small pool. */
export function openBenchConnection(url: string): Promise<Connection> {
  return openConnection(
    readConfig({ DATABASE_URL: url, DB_QUERY_TIMEOUT_MS: "0", DB_POOL_MAX: "2" }),
  );
}

export function withDatabase(url: string, database: string, port?: number): string {
  const next = new URL(url);
  next.pathname = `/${database}`;
  if (port !== undefined) {
    next.hostname = "127.0.0.1";
    next.port = String(port);
  }
  return next.toString();
}

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  readonly connection: Connection;
  /** Calls of the implementation's function so far and their total time (ms). */
  functionTime(): Promise<{ calls: number; ms: number }>;
  drop(): Promise<void>;
}

/** A database of the bench's own, dropped first if a run left it behind. */
interface FreshDatabase {
  url: string;
  connection: Connection;
  drop(): Promise<void>;
}

/** Drops and creates database `name` on the server of `adminUrl`, with `settings` (ALTER DATABASE … SET). */
export async function freshDatabase(
  adminUrl: string,
  name: string,
  settings: string[] = [],
): Promise<FreshDatabase> {
  const admin = await openBenchConnection(adminUrl);
  const dropIt = () => admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
  await dropIt();
  await admin.db.execute(sql.raw(`create database ${name}`));
  for (const setting of settings) {
    await admin.db.execute(sql.raw(`alter database ${name} set ${setting}`));
  }
  const url = withDatabase(adminUrl, name);
  const connection = await openBenchConnection(url);
  return {
    url,
    connection,
    async drop() {
      await connection.close().catch(() => {});
      await dropIt();
      await admin.close();
    },
  };
}

/**
 * Drops and creates `identify_bench_<implementation>` with function statistics on. The
 * minimal implementation's schema is loaded here; the service migrates its own database
 * when `npm start` starts, exactly as in production.
 */
export async function createBenchDatabase(
  adminUrl: string,
  implementation: Implementation,
): Promise<BenchDatabase> {
  const name = `identify_bench_${implementation}`;
  const { url, connection, drop } = await freshDatabase(adminUrl, name, ["track_functions = 'pl'"]);
  if (implementation === "minimal") {
    await connection.db.execute(
      sql.raw(readFileSync(new URL("./minimal/schema.sql", import.meta.url), "utf8")),
    );
  }
  return {
    name,
    url,
    connection,
    async functionTime() {
      const [row] = await queryRows<{ calls: number; ms: number }>(
        connection.db,
        sql`select coalesce(sum(calls), 0)::float8 as calls, coalesce(sum(total_time), 0)::float8 as ms
              from pg_stat_user_functions where funcname = ${FUNCTION_OF[implementation]}`,
      );
      return row ?? { calls: 0, ms: 0 };
    },
    drop,
  };
}
