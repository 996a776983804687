/**
 * The one module that connects to the database. It connects lazily, on first use, never on
 * import, keeps one connection per process, and picks the driver from the configuration:
 * - `DATABASE_URL` on a Neon host, or any host with `NEON_WS_PROXY` set: the Neon serverless
 *   driver (neon.ts);
 * - `DATABASE_URL` on any other host: node-postgres, TLS as its sslmode says (node-postgres.ts);
 * - unset: the embedded PGlite database, migrated when opened (pglite.ts). Never on Vercel.
 * Each driver module is imported only when chosen, so a process loads one of them.
 */
import { type Config, getConfig } from "../config.js";
import type { Database, DriverConnection } from "./database.js";
import { type DatabaseUrl, usesNodePostgres } from "./database-url.js";
import { DatabaseUnavailableError } from "./errors.js";
import type { MigrateOptions, MigrationReport } from "./migrate.js";
import type { PoolSettings } from "./pool.js";

export type { Database, DriverConnection };

/** Which driver a connection uses. */
type DriverName = "neon" | "node-postgres" | "pglite";

/** An open database: the Drizzle handle plus what only the owner of the connection can do. */
export interface Connection extends DriverConnection {
  readonly driver: DriverName;
  /**
   * Applies pending migrations from drizzle/. Safe to run concurrently from many processes.
   * Refuses the recorded production database unless `options.allowProduction`.
   */
  migrate(options?: MigrateOptions): Promise<MigrationReport>;
  /** The embedded database migrates itself when opened: what that applied. */
  readonly migratedOnOpen?: MigrationReport;
}

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

/** The driver a configuration selects (see the module comment). */
export function driverFor(config: Pick<Config, "DATABASE_URL" | "NEON_WS_PROXY">): DriverName {
  if (!config.DATABASE_URL) return "pglite";
  return usesNodePostgres(config.DATABASE_URL, config.NEON_WS_PROXY) ? "node-postgres" : "neon";
}

/**
 * Opens a new connection for the given configuration (not shared; the caller closes it), to
 * `url`, one of its parsed database URLs: DATABASE_URL unless the caller picks another
 * (migrations use DATABASE_URL_UNPOOLED).
 */
export async function openConnection(
  config: Config,
  url: DatabaseUrl | undefined = config.DATABASE_URL,
): Promise<Connection> {
  const driver = driverFor({ DATABASE_URL: url, NEON_WS_PROXY: config.NEON_WS_PROXY });
  const pool: PoolSettings = {
    max: config.DB_POOL_MAX,
    connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
    queryTimeoutMs: config.DB_QUERY_TIMEOUT_MS,
  };
  let opened: DriverConnection;
  if (driver === "neon" && url) {
    const { openNeon } = await import("./neon.js");
    const proxy = config.NEON_WS_PROXY ? new URL(config.NEON_WS_PROXY) : undefined;
    opened = openNeon(url, pool, proxy);
  } else if (driver === "node-postgres" && url) {
    const { openNodePostgres } = await import("./node-postgres.js");
    opened = await openNodePostgres(url, pool);
  } else {
    // A deployment has no disk to keep it on (`vercel dev`, a machine with one, is none).
    if (config.deployment) {
      throw new DatabaseUnavailableError(
        "DATABASE_URL is not set on this Vercel deployment; refusing to use the embedded database",
      );
    }
    const { openPglite } = await import("./pglite.js");
    opened = await openPglite(config.PGLITE_DIR, config.PGLITE_LOCK_WAIT_MS);
  }
  // Imported on use: the deployed function never migrates (its build does), and its bundle
  // leaves this module out (scripts/build-function.ts).
  const migrate = async (options?: MigrateOptions) =>
    (await import("./migrate.js")).applyMigrations(opened.db, options);
  if (driver !== "pglite") return { ...opened, driver, migrate };
  // The embedded database has no deploy step, so it is brought up to date when opened.
  const migratedOnOpen = await migrate().catch(async (error: unknown) => {
    await opened.close();
    throw error;
  });
  return { ...opened, driver, migrate, migratedOnOpen };
}
