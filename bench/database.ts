/**
 * The bench's own database on the target server: created fresh (dropped first) through the
 * admin URL, owned by a dedicated login role that only the service process uses, so that
 * pg_stat_statements can tell the service's statements from the bench's own bookkeeping by
 * role alone. Also the statement counter built on that separation.
 */
import { sql } from "drizzle-orm";
import { readConfig } from "../lib/config.js";
import { type Connection, openConnection } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";

/** Login role the service process connects as (created if missing, dropped with the database). */
const SERVER_ROLE = "identify_bench_server";

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function identifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`refusing unusual SQL identifier "${name}"`);
  return name;
}

/** Opens a bench-side connection: no query timeout (bulk loads take long), small pool. */
export function openBenchConnection(url: string): Promise<Connection> {
  return openConnection(
    readConfig({ DATABASE_URL: url, DB_QUERY_TIMEOUT_MS: "0", DB_POOL_MAX: "2" }),
  );
}

function withDatabase(url: string, database: string, user?: string): string {
  const next = new URL(url);
  next.pathname = `/${database}`;
  if (user !== undefined) {
    next.username = user;
    next.password = "";
  }
  return next.toString();
}

/** A fresh database for one bench run. */
export interface BenchDatabase {
  readonly name: string;
  /** For the service: the dedicated role when there is one. */
  readonly serverUrl: string;
  /** Role the service's statements run under. */
  readonly serverRole: string;
  /** Whether the service has a role of its own (else it shares the bench's). */
  readonly dedicatedRole: boolean;
  /** The bench's own connection to the database (admin user). */
  readonly connection: Connection;
  /** "15.20 (Debian ...)" */
  readonly serverVersion: string;
  /** Notes for the report about how the database was set up. */
  readonly notes: string[];
  /** Closes the bench's connections and, unless kept, drops the database and role. */
  dispose(keep: boolean): Promise<void>;
}

/**
 * Drops and recreates `name` on the server behind `adminUrl`. The schema is not created
 * here: the service's own `npm start` migrates it, exactly as in production.
 */
export async function createBenchDatabase(adminUrl: string, name: string): Promise<BenchDatabase> {
  const database = identifier(name);
  const admin = await openBenchConnection(adminUrl);
  const notes: string[] = [];
  try {
    const [me] = await queryRows<{ user: string; version: string; can_create_role: boolean }>(
      admin.db,
      sql`select current_user as "user", current_setting('server_version') as version,
                 (select rolsuper or rolcreaterole from pg_roles where rolname = current_user)
                   as can_create_role`,
    );
    if (!me) throw new Error("could not read the server version");
    await admin.db.execute(sql.raw(`drop database if exists ${database} with (force)`));

    let serverRole = me.user;
    let dedicatedRole = false;
    if (me.can_create_role) {
      try {
        await admin.db.execute(
          sql.raw(`do $$ begin
            if not exists (select from pg_roles where rolname = '${SERVER_ROLE}') then
              create role ${SERVER_ROLE} login;
            end if; end $$`),
        );
        await admin.db.execute(sql.raw(`create database ${database} owner ${SERVER_ROLE}`));
        serverRole = SERVER_ROLE;
        dedicatedRole = true;
      } catch (error) {
        notes.push(`could not give the service a role of its own (${message(error)})`);
      }
    } else {
      notes.push(`${me.user} cannot create roles; the service shares the bench's role`);
    }
    if (!dedicatedRole) await admin.db.execute(sql.raw(`create database ${database}`));

    let serverUrl = withDatabase(adminUrl, database, dedicatedRole ? serverRole : undefined);
    if (dedicatedRole && !(await canConnect(serverUrl))) {
      notes.push(`role ${serverRole} cannot log in here; the service shares the bench's role`);
      await admin.db.execute(sql.raw(`alter database ${database} owner to ${identifier(me.user)}`));
      serverRole = me.user;
      dedicatedRole = false;
      serverUrl = withDatabase(adminUrl, database);
    }

    const connection = await openBenchConnection(withDatabase(adminUrl, database));
    return {
      name: database,
      serverUrl,
      serverRole,
      dedicatedRole,
      connection,
      serverVersion: me.version,
      notes,
      async dispose(keep) {
        await connection.close().catch(() => {});
        if (!keep) {
          await admin.db.execute(sql.raw(`drop database if exists ${database} with (force)`));
          if (dedicatedRole) {
            await admin.db
              .execute(sql.raw(`drop role if exists ${SERVER_ROLE}`))
              .catch((error: unknown) => notes.push(`role not dropped: ${message(error)}`));
          }
        }
        await admin.close();
      },
    };
  } catch (error) {
    await admin.close().catch(() => {});
    throw error;
  }
}

async function canConnect(url: string): Promise<boolean> {
  const probe = await openBenchConnection(url).catch(() => undefined);
  if (!probe) return false;
  try {
    await probe.db.execute(sql`select 1`);
    return true;
  } catch {
    return false;
  } finally {
    await probe.close().catch(() => {});
  }
}

/**
 * The innermost message of an error chain: the server's words, not Drizzle's wrapper (whose
 * message repeats the whole query and its parameters, megabytes for a bulk insert).
 */
export function message(error: unknown): string {
  let current: unknown = error;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/** Statements the service issued during one measured window. */
export interface StatementCount {
  /** Every statement of the service's role in the bench database. */
  total: number;
  /** Of which calls of identify_contact. */
  identify: number;
  /** Mean execution time of an identify_contact call inside PostgreSQL, in ms. */
  identifyMeanMs: number;
  /** The other statements, most frequent first (normally none). */
  others: { query: string; calls: number }[];
}

/** Counts the service's statements with pg_stat_statements, when the server allows it. */
export interface StatementCounter {
  readonly available: boolean;
  /** How the counting works, or why it cannot. */
  readonly note: string;
  /** Forgets the service's statements so far (only this database and role). */
  reset(): Promise<void>;
  /** The service's statements since the last reset. */
  read(): Promise<StatementCount | undefined>;
}

/**
 * Enables pg_stat_statements in the bench database (CREATE EXTENSION) and returns a counter
 * scoped to the service's role and this database. The server must already preload the
 * library; the bench never changes server configuration, it only reports that it cannot
 * count.
 */
export async function statementCounter(bench: BenchDatabase): Promise<StatementCounter> {
  const db = bench.connection.db;
  try {
    await db.execute(sql`create extension if not exists pg_stat_statements`);
    // Resetting needs superuser or a GRANT; find out now rather than mid-run. Query id -1
    // matches no entry, so this resets nothing, for anyone.
    await db.execute(sql`select pg_stat_statements_reset(0, 0, -1)`);
  } catch (error) {
    return {
      available: false,
      note: `statements per request not measured: pg_stat_statements is unavailable (${message(error)})`,
      reset: async () => {},
      read: async () => undefined,
    };
  }
  const [ids] = await queryRows<{ role: number; database: number; track: string }>(
    db,
    sql`select (select oid from pg_roles where rolname = ${bench.serverRole})::int as role,
               (select oid from pg_database where datname = current_database())::int as database,
               current_setting('pg_stat_statements.track') as track`,
  );
  if (!ids) throw new Error("could not resolve the role and database oids");
  // With a role of its own the service's entries are exactly the role's; sharing the role,
  // the bench's only statements in a window are these pg_stat_statements calls themselves.
  // Only top-level statements count (what the service sent), even under track=all.
  const ownQueries = bench.dedicatedRole ? sql`` : sql`and query not ilike '%pg_stat_statements%'`;
  return {
    available: true,
    note:
      `pg_stat_statements (track=${ids.track}) in ${bench.name}, counting every statement of ` +
      `role ${bench.serverRole}` +
      (bench.dedicatedRole
        ? " (the service's own role; the bench's queries run as another)"
        : " minus the bench's own pg_stat_statements queries"),
    async reset() {
      await db.execute(
        sql`select pg_stat_statements_reset(${ids.role}::oid, ${ids.database}::oid, 0)`,
      );
    },
    async read() {
      const rows = await queryRows<{ query: string; calls: string | number; ms: number }>(
        db,
        sql`select query, calls, total_exec_time::float8 as ms from pg_stat_statements
             where userid = ${ids.role}::oid and dbid = ${ids.database}::oid and toplevel
               ${ownQueries}
             order by calls desc`,
      );
      let total = 0;
      let identify = 0;
      let identifyMs = 0;
      const others: { query: string; calls: number }[] = [];
      for (const row of rows) {
        const calls = Number(row.calls);
        total += calls;
        if (/identify_contact\s*\(/i.test(row.query)) {
          identify += calls;
          identifyMs += Number(row.ms);
        } else others.push({ query: row.query.replace(/\s+/g, " ").slice(0, 120), calls });
      }
      return {
        total,
        identify,
        identifyMeanMs: identify ? identifyMs / identify : Number.NaN,
        others,
      };
    },
  };
}
