/**
 * Real databases for tests: a PGlite folder of its own, or a database of its own on the
 * local PostgreSQL server reached through the Neon driver and the WebSocket bridge. Where no
 * PostgreSQL is reachable its suites skip with a notice, except under CI=true, where that
 * is a failure.
 *
 * Opening a new PGlite runs initdb, seconds of CPU, and migrating a database takes a while
 * more: done by every test file, that was most of the suite's time. So the global setup
 * (test/support/global-setup.ts) builds one migrated database of each kind per run, and
 * each file gets a copy: a copied PGlite folder, or CREATE DATABASE … TEMPLATE.
 *
 * The only test module that calls openConnection and readConfig for databases: when the
 * database client changes shape, this is the file to adapt.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, inject } from "vitest";
import { readConfig } from "../../lib/config.js";
import {
  type Connection,
  closeDatabase,
  getConnection,
  openConnection,
} from "../../lib/db/client.js";
import { databaseMessage } from "../../lib/db/errors.js";
import { startNeonWsProxy } from "../../scripts/neon-ws-proxy.js";
import { pgbouncerAvailable, startPgbouncer } from "./pgbouncer.js";

/** Server-level URL used to create and drop test databases. */
export const ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Opens a connection configured by the given environment variables alone. */
export function connect(env: Record<string, string | undefined>): Promise<Connection> {
  return openConnection(readConfig(env));
}

/** A URL for the database `name` on the server of ADMIN_URL. */
function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs statements on the server's maintenance database, with a connection of their own. */
async function withAdmin<T>(work: (admin: Connection) => Promise<T>): Promise<T> {
  const admin = await connect({ DATABASE_URL: ADMIN_URL });
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}

const accessible = (path: string, mode = constants.F_OK) =>
  access(path, mode).then(
    () => true,
    () => false,
  );

/**
 * A new empty folder for a test's PGlite files, on a RAM file system where there is one.
 * On this machine's disk, shared with every other worktree's databases, copying the
 * 40 MB template and running 200 small transactions took 1.5 to 5 s, against 0.8 to 1.2 s
 * in /dev/shm (PGlite runs with fsync off, so this is plain write and copy cost).
 */
export async function scratchFolder(): Promise<string> {
  return mkdtemp(join(await scratchRoot(), SCRATCH_PREFIX));
}

const SCRATCH_PREFIX = "identify-test-";

const scratchRoot = async () =>
  (await accessible("/dev/shm", constants.W_OK)) ? "/dev/shm" : tmpdir();

// ---------------------------------------------------------------------------------------
// Built once per run, by the global setup.

/**
 * Whether PostgreSQL answers at ADMIN_URL. Under CI=true a server that does not is an
 * error, so that its suites can never be skipped there unnoticed.
 */
export async function probePostgres(): Promise<boolean> {
  try {
    const admin = await connect({ DATABASE_URL: ADMIN_URL, DB_CONNECT_TIMEOUT_MS: "3000" });
    try {
      await admin.db.execute(sql`select 1`);
    } finally {
      await admin.close();
    }
    return true;
  } catch (error) {
    // Drizzle's "Failed query" says little; the driver's error under it says why.
    const reason = databaseMessage(error);
    if (process.env.CI === "true") {
      throw new Error(`CI=true but PostgreSQL at ${ADMIN_URL} is not reachable: ${reason}`);
    }
    console.warn(
      `\n  NOTICE: PostgreSQL at ${ADMIN_URL} is not reachable (${reason}); ` +
        "its suites are SKIPPED. Set TEST_DATABASE_URL or start PostgreSQL to run them.\n",
    );
    return false;
  }
}

/**
 * Creates and migrates this run's template database; returns its name and how to drop it.
 * It is the run's own (other worktrees share the server and may have other migrations),
 * and refuses connections once migrated: CREATE DATABASE … TEMPLATE fails while anyone is
 * connected to the template.
 */
export async function buildPostgresTemplate(): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `identify_template_${randomBytes(6).toString("hex")}`;
  await withAdmin((admin) => admin.db.execute(sql.raw(`create database ${name}`)));
  const drop = async () => {
    await withAdmin((admin) =>
      admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`)),
    );
  };
  try {
    const template = await connect({ DATABASE_URL: databaseUrl(name) });
    try {
      await template.migrate();
    } finally {
      await template.close();
    }
    await withAdmin((admin) =>
      admin.db.execute(sql.raw(`alter database ${name} with allow_connections false`)),
    );
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, drop };
}

/** Everything opening the embedded database depends on: migrations, the client, versions. */
async function pgliteTemplateKey(): Promise<string> {
  const hash = createHash("sha256");
  for (const folder of ["drizzle", "lib/db"]) {
    const files = await readdir(join(ROOT, folder), { recursive: true, withFileTypes: true });
    const paths = files
      .filter((file) => file.isFile())
      .map((file) => relative(ROOT, join(file.parentPath, file.name)))
      .sort();
    for (const path of paths) {
      hash.update(`${path}\0`).update(await readFile(join(ROOT, path)));
    }
  }
  for (const pkg of ["@electric-sql/pglite", "drizzle-orm"]) {
    const { version } = JSON.parse(
      await readFile(join(ROOT, "node_modules", pkg, "package.json"), "utf8"),
    ) as { version: string };
    hash.update(`${pkg}@${version}`);
  }
  return hash.digest("hex").slice(0, 16);
}

/**
 * A migrated PGlite folder, kept between runs under node_modules/.cache and keyed by what
 * shapes it, so a change to a migration or to the client builds a new one. It is built
 * beside its final place and renamed into it, so a run stopped half-way leaves no
 * half-built template behind. Templates under other keys are removed.
 */
export async function buildPgliteTemplate(): Promise<string> {
  const cache = join(ROOT, "node_modules", ".cache", "identify-tests");
  const name = `pglite-${await pgliteTemplateKey()}`;
  const dir = join(cache, name);
  await mkdir(cache, { recursive: true });
  for (const entry of await readdir(cache)) {
    if (!entry.startsWith(name)) await rm(join(cache, entry), { recursive: true, force: true });
  }
  if (await accessible(dir)) return dir;

  const building = `${dir}.building-${randomBytes(6).toString("hex")}`;
  try {
    // Opening a new folder creates the database and applies every migration.
    await (await connect({ PGLITE_DIR: building })).close();
    await rename(building, dir);
  } catch (error) {
    // Another run may have finished the same template first; theirs is as good.
    if (!(await accessible(dir))) throw error;
  } finally {
    await rm(building, { recursive: true, force: true });
    await rm(`${building}.lock`, { recursive: true, force: true });
  }
  return dir;
}

/**
 * Deletes the scratch folders of runs that were stopped before their files could (Ctrl-C
 * skips the cleanup hooks), each a 40 MB copy that in /dev/shm holds memory until reboot.
 * Runs going on in other worktrees share the prefix, but none keeps a folder for an hour.
 */
export async function removeStaleScratchFolders(): Promise<void> {
  const root = await scratchRoot();
  const anHourAgo = Date.now() - 60 * 60 * 1000;
  for (const entry of await readdir(root)) {
    if (!entry.startsWith(SCRATCH_PREFIX)) continue;
    const path = join(root, entry);
    const modified = await stat(path).then(
      (info) => info.mtimeMs,
      () => Number.POSITIVE_INFINITY,
    );
    if (modified < anHourAgo) await rm(path, { recursive: true, force: true });
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The migrated PGlite folder to copy. */
    pgliteTemplate: string;
    /** The migrated PostgreSQL template database, or null where PostgreSQL is unreachable. */
    postgresTemplate: string | null;
  }
}

// ---------------------------------------------------------------------------------------
// Used by the test files.

/**
 * Whether the PostgreSQL suites can run here, as the global setup found. A function: this
 * module is loaded by the global setup too, where there is nothing to inject yet.
 */
export function postgresAvailable(): boolean {
  return inject("postgresTemplate") !== null;
}

/** A database created for one test file, dropped by `drop()`. */
export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates a database on the local server: a copy of the migrated template, or with
 * `{ migrated: false }` an empty one, for tests of migrating itself.
 */
export async function createPostgresDatabase(
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const template = options.migrated === false ? null : inject("postgresTemplate");
  const name = `identify_test_${randomBytes(6).toString("hex")}`;
  const admin = await connect({ DATABASE_URL: ADMIN_URL });
  await admin.db.execute(
    sql.raw(`create database ${name}${template ? ` template ${template}` : ""}`),
  );
  return {
    url: databaseUrl(name),
    async drop() {
      await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
      await admin.close();
    },
  };
}

/** A PGlite folder of one test file's own; `remove()` deletes it. */
export interface PgliteFolder {
  dir: string;
  remove(): Promise<void>;
}

/** Copies the run's migrated PGlite folder into a new folder of this file's own. */
export async function clonePglite(): Promise<PgliteFolder> {
  const parent = await scratchFolder();
  const dir = join(parent, "data");
  await cp(inject("pgliteTemplate"), dir, { recursive: true });
  return {
    dir,
    // The parent also holds the lock file the client keeps beside the folder.
    remove: () => rm(parent, { recursive: true, force: true }),
  };
}

/** A migrated database of a test's own, as the environment a process opens it from. */
export interface ScratchDatabase {
  env: { DATABASE_URL: string; NEON_WS_PROXY?: string } | { PGLITE_DIR: string };
  remove(): Promise<void>;
}

async function pgliteCopy(): Promise<ScratchDatabase> {
  const folder = await clonePglite();
  return { env: { PGLITE_DIR: folder.dir }, remove: folder.remove };
}

async function postgresCopy(): Promise<ScratchDatabase> {
  const database = await createPostgresDatabase();
  return { env: { DATABASE_URL: database.url }, remove: database.drop };
}

/**
 * For tests whose subject is not the database (the HTTP server, access control, the
 * process): a copy of the migrated template on PostgreSQL where it runs, which opens in
 * milliseconds, else a copy of the embedded database, which costs a second of CPU to open.
 */
export function scratchDatabase(): Promise<ScratchDatabase> {
  return postgresAvailable() ? postgresCopy() : pgliteCopy();
}

/**
 * For files that call the handler, which opens its process-wide database from the
 * environment on its first request: registers the file's hooks that make a database with
 * `make`, point the environment (and `env`) at it, and close and remove it after the file.
 * Answers the database, once made.
 */
function serve(
  make: () => Promise<ScratchDatabase>,
  env: Record<string, string> = {},
): () => ScratchDatabase | undefined {
  let database: ScratchDatabase | undefined;
  beforeAll(async () => {
    database = await make();
    delete process.env.DATABASE_URL;
    Object.assign(process.env, database.env, env);
  });
  afterAll(async () => {
    await closeDatabase();
    await database?.remove();
    for (const name of Object.keys({ ...database?.env, ...env })) delete process.env[name];
  });
  return () => database;
}

/** serve() with a scratchDatabase: for a file whose subject is not the database. */
export function serveScratchDatabase(): void {
  serve(scratchDatabase);
}

/** A backend a shared suite runs against: a migrated connection plus cleanup. */
export interface Backend {
  /** pgbouncer and neon are PostgreSQL behind the pooler or the Neon driver (servedDatabase). */
  name: "pglite" | "postgres" | "pgbouncer" | "neon";
  /** False when the backend cannot run here; the suite skips. */
  available: boolean;
  open(): Promise<Connection>;
  /** The opened database's URL; undefined for the embedded database, which has none. */
  url(): string | undefined;
  dispose(): Promise<void>;
}

export function pgliteBackend(): Backend {
  let folder: PgliteFolder | undefined;
  let connection: Connection | undefined;
  return {
    name: "pglite",
    available: true,
    async open() {
      folder = await clonePglite();
      connection = await connect({ PGLITE_DIR: folder.dir });
      return connection;
    },
    url: () => undefined,
    async dispose() {
      await connection?.close();
      await folder?.remove();
    },
  };
}

export function postgresBackend(options: { poolMax?: number } = {}): Backend {
  let database: TestDatabase | undefined;
  let connection: Connection | undefined;
  return {
    name: "postgres",
    available: postgresAvailable(),
    async open() {
      database = await createPostgresDatabase();
      connection = await connect({
        DATABASE_URL: database.url,
        DB_POOL_MAX: String(options.poolMax ?? 5),
      });
      return connection;
    },
    url: () => database?.url,
    async dispose() {
      await connection?.close();
      await database?.drop();
    },
  };
}

/**
 * The process-wide database (getConnection in lib/db/client.ts), set up once for a whole
 * test file and shared by every suite the file runs. The handler reaches no other database,
 * and a database per suite would cost a PGlite start, a second of CPU, each time. Call it
 * at the top level of the file: it registers the file's hooks. The suites empty the tables
 * before each test, so they do not see each other's rows.
 *
 * pgbouncer and neon are a PostgreSQL copy reached the way a deployment on Neon reaches it:
 * behind PgBouncer in transaction mode (a pooled Neon URL), or through the Neon driver and
 * a WebSocket proxy.
 */
export function servedDatabase(name: Backend["name"]): Backend {
  const shared = {
    name,
    open: getConnection,
    // The file's hooks close it.
    dispose: async () => {},
  };
  if (name === "pglite") {
    serve(pgliteCopy);
    return { ...shared, available: true, url: () => undefined };
  }
  const available = postgresAvailable() && (name !== "pgbouncer" || pgbouncerAvailable());
  const reached = { postgres: postgresCopy, pgbouncer: pooledCopy, neon: copyThroughNeon }[name];
  const served = available
    ? serve(reached, {
        // Short, for the handler's test of a lock wait that times out; the suites that call
        // the reconciler directly pass their own.
        DB_LOCK_TIMEOUT_MS: "300",
        // Room for the forget suite's requests that run beside an erasure.
        DB_POOL_MAX: "12",
      })
    : () => undefined;
  return {
    ...shared,
    available,
    url: () => {
      const env = served()?.env;
      return env && "DATABASE_URL" in env ? env.DATABASE_URL : undefined;
    },
  };
}

/** A PostgreSQL copy behind a PgBouncer of its own in transaction mode. */
async function pooledCopy(): Promise<ScratchDatabase> {
  const database = await createPostgresDatabase();
  const pooler = await startPgbouncer(ADMIN_URL);
  return {
    env: { DATABASE_URL: pooler.pooled(database.url) },
    async remove() {
      await pooler.stop();
      await database.drop();
    },
  };
}

/** A PostgreSQL copy reached through the Neon driver and a WebSocket proxy of its own. */
async function copyThroughNeon(): Promise<ScratchDatabase> {
  const database = await createPostgresDatabase();
  const { hostname, port } = new URL(database.url);
  const proxy = await startNeonWsProxy({ allow: [`${hostname}:${port || 5432}`] });
  return {
    env: { DATABASE_URL: database.url, NEON_WS_PROXY: proxy.url },
    async remove() {
      await proxy.close();
      await database.drop();
    },
  };
}

/**
 * Empties the contacts, their audit trail and what erasures leave (their records and the
 * erased-values list, which would otherwise keep a later test's rows out) and restarts ids,
 * between tests.
 */
export async function resetContacts(connection: Connection): Promise<void> {
  await connection.db.execute(
    sql`truncate contacts, identity_events, erasures, erased_values restart identity`,
  );
}
