/**
 * Statements per request: every top-level statement each implementation sent PostgreSQL during
 * a measured window, counted with pg_stat_statements (Δcalls of its entries for the bench
 * database), and the choice of server that makes the count possible.
 *
 * pg_stat_statements must be in the server's `shared_preload_libraries`, which takes a
 * restart; the bench never reconfigures or restarts a server. When the given server lacks it
 * and runs on this machine, the whole bench moves to a throwaway cluster (cluster.ts) started
 * from the same binaries with it preloaded, so every figure of a run comes from one server.
 * When that is not possible either, the bench runs where it was pointed and says why it could
 * not count.
 */
import { sql } from "drizzle-orm";
import type { Connection } from "../lib/db/client.js";
import { databaseMessage } from "../lib/db/errors.js";
import { queryRows } from "../lib/db/query.js";
import { findPostgresBin, startThrowawayCluster, type ThrowawayCluster } from "./cluster.js";
import { openBenchConnection } from "./database.js";

/** The statements of one window: calls of each normalized statement, most frequent first. */
export interface StatementCount {
  /** Statements sent during the window, all of them. */
  total: number;
  /** total ÷ requests of the window. */
  perRequest: number;
  /** Each distinct statement (pg_stat_statements' normalized text, shortened) and its calls. */
  queries: { query: string; calls: number }[];
}

/** Per statement (role and query id) of one database: text and calls so far. */
export type StatementSnapshot = Map<string, { query: string; calls: number }>;

/** Reads pg_stat_statements through a connection to the server's admin database. */
export class StatementCounter {
  constructor(private readonly admin: Connection) {}

  /**
   * The top-level statements run in `database` so far. The bench's own reads of function
   * time in that database (pg_stat_user_functions) are left out: nothing else but the
   * implementation under test runs there during a window, and this reader runs in another
   * database.
   */
  async snapshot(database: string): Promise<StatementSnapshot> {
    const rows = await queryRows<{ key: string; query: string; calls: number }>(
      this.admin.db,
      sql`select userid::text || '/' || queryid::text as key, query, calls::float8 as calls
            from pg_stat_statements
           where dbid = (select oid from pg_database where datname = ${database})
             and toplevel and query not like '%pg_stat_user_functions%'`,
    );
    return new Map(rows.map((row) => [row.key, { query: row.query, calls: row.calls }]));
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}

/** What was sent between two snapshots of one database, over `requests` requests. */
export function statementsBetween(
  before: StatementSnapshot,
  after: StatementSnapshot,
  requests: number,
): StatementCount {
  const queries: { query: string; calls: number }[] = [];
  for (const [key, { query, calls }] of after) {
    const delta = calls - (before.get(key)?.calls ?? 0);
    if (delta > 0)
      queries.push({ query: query.replace(/\s+/g, " ").trim().slice(0, 160), calls: delta });
  }
  queries.sort((a, b) => b.calls - a.calls);
  const total = queries.reduce((sum, q) => sum + q.calls, 0);
  return { total, perRequest: total / requests, queries };
}

/** The server a bench run uses, and whether (and how) it counts statements. */
export interface BenchServer {
  /** Server-level URL the bench creates its databases through. */
  readonly adminUrl: string;
  /** Which server this is, and why, for the report. */
  readonly description: string;
  /** How statements are counted, or "unavailable: <why>". */
  readonly counting: string;
  readonly counter?: StatementCounter;
  /** Closes the counter's connection; stops and deletes a throwaway cluster. */
  close(): Promise<void>;
  /** Stops a throwaway cluster at once (for exit paths that cannot wait). */
  stopNow(): void;
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]", ""]);

const where = (url: string) => {
  const { hostname, port } = new URL(url);
  return `${hostname || "localhost"}:${port || 5432}`;
};

/** Opens the counter on `url`'s admin database, creating the extension there if missing. */
async function openCounter(url: string): Promise<StatementCounter> {
  const admin = await openBenchConnection(url);
  try {
    await admin.db.execute(sql`create extension if not exists pg_stat_statements`);
    await admin.db.execute(sql`select count(*) from pg_stat_statements`);
    return new StatementCounter(admin);
  } catch (error) {
    await admin.close().catch(() => {});
    throw error;
  }
}

/**
 * Picks the server: the given one when it preloads pg_stat_statements; else, when the given
 * server is on this machine and `allowThrowaway`, a throwaway cluster of the same major
 * version; else the given one without counting. Logs its choice through `progress`.
 */
export async function chooseServer(
  givenUrl: string,
  allowThrowaway: boolean,
  progress: (line: string) => void,
): Promise<BenchServer> {
  const given = where(givenUrl);
  const withoutCounting = (why: string): BenchServer => ({
    adminUrl: givenUrl,
    description: `${given}, as given`,
    counting: `unavailable: ${why}`,
    close: async () => {},
    stopNow: () => {},
  });

  const admin = await openBenchConnection(givenUrl);
  let preload: string;
  let major: number;
  try {
    const [row] = await queryRows<{ preload: string; major: number }>(
      admin.db,
      sql`select current_setting('shared_preload_libraries') as preload,
                 current_setting('server_version_num')::int / 10000 as major`,
    );
    preload = row?.preload ?? "";
    major = row?.major ?? 0;
  } finally {
    await admin.close();
  }

  if (/(^|[\s,])pg_stat_statements($|[\s,])/.test(preload)) {
    try {
      const counter = await openCounter(givenUrl);
      return {
        adminUrl: givenUrl,
        description: `${given}, as given (it preloads pg_stat_statements)`,
        counting: `pg_stat_statements on ${given}`,
        counter,
        close: () => counter.close(),
        stopNow: () => {},
      };
    } catch (error) {
      return withoutCounting(
        `pg_stat_statements is preloaded on ${given} but ${databaseMessage(error)}`,
      );
    }
  }
  const lacks = `${given} does not preload pg_stat_statements (shared_preload_libraries = '${preload}'; adding it takes a restart)`;
  if (!allowThrowaway) return withoutCounting(`${lacks}, and --given-server keeps the bench there`);
  if (!LOCAL_HOSTS.has(new URL(givenUrl).hostname)) {
    return withoutCounting(
      `${lacks}; a throwaway cluster stands in only for a server on this machine`,
    );
  }
  const binDir = findPostgresBin(major);
  if (!binDir) {
    return withoutCounting(
      `${lacks}, and no PostgreSQL binaries (initdb, pg_ctl) were found for a throwaway cluster: set PG_BIN`,
    );
  }
  progress(`${lacks}: starting a throwaway cluster from ${binDir}`);
  let cluster: ThrowawayCluster;
  try {
    cluster = await startThrowawayCluster(binDir);
  } catch (error) {
    return withoutCounting(
      `${lacks}, and a throwaway cluster did not start: ${databaseMessage(error)}`,
    );
  }
  try {
    const counter = await openCounter(cluster.url);
    const here = where(cluster.url);
    return {
      adminUrl: cluster.url,
      description:
        `throwaway cluster ${here} (initdb from ${binDir} in ${cluster.dataDir}, autovacuum off, ` +
        `pg_stat_statements preloaded), deleted afterwards: ${given} does not preload pg_stat_statements`,
      counting: `pg_stat_statements on the throwaway cluster ${here}`,
      counter,
      async close() {
        await counter.close().catch(() => {});
        cluster.stop();
      },
      stopNow: () => cluster.stop(),
    };
  } catch (error) {
    cluster.stop();
    return withoutCounting(`${lacks}, and on the throwaway cluster ${databaseMessage(error)}`);
  }
}
