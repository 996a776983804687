/**
 * Real databases for tests: an in-memory PGlite, or a fresh database on the local
 * PostgreSQL server reached through the Neon driver and the WebSocket bridge. Where no
 * PostgreSQL is reachable its suites skip with a notice, except under CI=true, where that
 * is a failure.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { readConfig } from "../../lib/config.js";
import { type Connection, openConnection } from "../../lib/db/client.js";

/** Server-level URL used to create and drop test databases. */
export const ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function probePostgres(): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await openConnection(
      readConfig({ DATABASE_URL: ADMIN_URL, DB_CONNECT_TIMEOUT_MS: "3000" }),
    );
    await connection.db.execute(sql`select 1`);
    return true;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI === "true") {
      throw new Error(`CI=true but PostgreSQL at ${ADMIN_URL} is not reachable: ${reason}`);
    }
    console.warn(
      `\n  NOTICE: PostgreSQL at ${ADMIN_URL} is not reachable (${reason}); ` +
        "its suites are SKIPPED. Set TEST_DATABASE_URL or start PostgreSQL to run them.\n",
    );
    return false;
  } finally {
    await connection?.close();
  }
}

/** Whether the PostgreSQL suites can run here (decided once per test file). */
export const postgresAvailable = await probePostgres();

/** A database created for one test file, dropped by `drop()`. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the local server; migrate it through a Connection. */
export async function createPostgresDatabase(): Promise<TestDatabase> {
  const name = `identify_test_${randomBytes(6).toString("hex")}`;
  const admin = await openConnection(readConfig({ DATABASE_URL: ADMIN_URL }));
  await admin.db.execute(sql.raw(`create database ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
      await admin.close();
    },
  };
}

/** A backend a shared suite runs against: a migrated connection plus cleanup. */
export interface Backend {
  name: "pglite" | "postgres";
  /** False when the backend cannot run here; the suite skips. */
  available: boolean;
  open(): Promise<Connection>;
  /** The opened database's URL; undefined for the embedded database, which has none. */
  url(): string | undefined;
  dispose(): Promise<void>;
}

export function pgliteBackend(): Backend {
  let connection: Connection | undefined;
  return {
    name: "pglite",
    available: true,
    async open() {
      connection = await openConnection(readConfig({ PGLITE_DIR: "memory://" }));
      return connection;
    },
    url: () => undefined,
    async dispose() {
      await connection?.close();
    },
  };
}

export function postgresBackend(options: { poolMax?: number } = {}): Backend {
  let database: TestDatabase | undefined;
  let connection: Connection | undefined;
  return {
    name: "postgres",
    available: postgresAvailable,
    async open() {
      database = await createPostgresDatabase();
      connection = await openConnection(
        readConfig({ DATABASE_URL: database.url, DB_POOL_MAX: String(options.poolMax ?? 5) }),
      );
      await connection.migrate();
      return connection;
    },
    url: () => database?.url,
    async dispose() {
      await connection?.close();
      await database?.drop();
    },
  };
}

/** Empties the contacts and their audit trail and restarts ids, between tests. */
export async function resetContacts(connection: Connection): Promise<void> {
  await connection.db.execute(sql`truncate contacts, identity_events, erasures restart identity`);
}
