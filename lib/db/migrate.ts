/**
 * Applies the migrations in drizzle/ with drizzle-kit's own bookkeeping
 * (`drizzle.__drizzle_migrations`), inside ONE transaction that first takes a transaction
 * advisory lock.
 *
 * Why not drizzle-orm's migrate(): serializing concurrent deploys needs a lock around it, and
 * a session lock (pg_advisory_lock) is wrong behind a transaction-mode pooler such as
 * PgBouncer or Neon's pooled URL: the pooler may hand the unlock to another server
 * connection, leaving the lock held for whoever gets that connection next. A transaction
 * lock is released by COMMIT or ROLLBACK on the very connection that took it, so it cannot
 * outlive the migration, behind any pooler.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import type { Database } from "./database.js";
import { describeDatabase, identifyDatabase, readDeployment, sameDatabase } from "./deployment.js";
import { queryRows } from "./query.js";

/** Advisory lock key (one bigint space) that serializes migration runs across processes. */
export const MIGRATION_LOCK_KEY = 7_104_286_113;

const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** What a migration run did. */
export interface MigrationReport {
  /** Tags (file names without .sql) of the migrations this run applied, oldest first. */
  applied: string[];
}

/** How a run treats the production database. */
export interface MigrateOptions {
  /**
   * Apply pending migrations even to the database a production build recorded as production
   * (lib/db/deployment.ts). Production builds pass it; a checkout's commands only when the
   * operator says so (`--migrate-production`): a branch may carry migrations production has
   * not shipped.
   */
  allowProduction?: boolean;
  /** Where the migrations are: drizzle/ unless a test brings a folder of its own. */
  migrationsFolder?: string;
}

/** The flag that lets a command of a checkout migrate the production database. */
const MIGRATE_PRODUCTION_FLAG = "--migrate-production";

/** A run refused to migrate the production database; nothing was applied. */
export class ProductionMigrationRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProductionMigrationRefused";
  }
}

/**
 * Applies every migration newer than the newest one the database has recorded, all or
 * nothing. Safe to run concurrently from many processes: they queue on the lock, and each
 * re-reads what is applied only once it holds it. With migrations pending on the database a
 * production build recorded as production, it refuses unless `allowProduction`, naming the
 * database and the migrations, having applied nothing.
 * @throws ProductionMigrationRefused
 */
export async function applyMigrations(
  db: Database,
  options: MigrateOptions = {},
): Promise<MigrationReport> {
  const migrationsFolder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
  const migrations = readMigrationFiles({ migrationsFolder });
  const tags = readTags(migrationsFolder);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(sql`create table if not exists drizzle.__drizzle_migrations (
      id serial primary key, hash text not null, created_at bigint)`);
    const [last] = await queryRows<{ created_at: string | number }>(
      tx,
      sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
    );
    const lastApplied = last ? Number(last.created_at) : Number.NEGATIVE_INFINITY;
    const pending = migrations.filter((migration) => migration.folderMillis > lastApplied);
    if (pending.length > 0 && !options.allowProduction) await refuseProduction(tx, pending.length);
    const applied: string[] = [];
    for (const [index, migration] of migrations.entries()) {
      if (migration.folderMillis <= lastApplied) continue;
      for (const statement of migration.sql) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at)
        values (${migration.hash}, ${migration.folderMillis})`);
      applied.push(tags[index] ?? String(migration.folderMillis));
    }
    return { applied };
  });
}

/** Throws when the database is the recorded production database. */
async function refuseProduction(db: Database, pending: number): Promise<void> {
  const recorded = await readDeployment(db);
  if (recorded?.role !== "production") return;
  const here = await identifyDatabase(db);
  if (!sameDatabase(recorded, here)) return;
  throw new ProductionMigrationRefused(
    `${describeDatabase(here)} is the production database (recorded by a production build ` +
      `on ${recorded.recordedAt.toISOString()}), and this checkout would apply ${pending} ` +
      "migration(s) it has not deployed. Nothing was applied. Ship them through a production " +
      `build, or run this command again with ${MIGRATE_PRODUCTION_FLAG} to apply them from here.`,
  );
}

/** The journal's tags, in the order readMigrationFiles returns the migrations. */
function readTags(migrationsFolder: string): string[] {
  const journal = JSON.parse(
    readFileSync(join(migrationsFolder, "meta", "_journal.json"), "utf8"),
  ) as { entries: { tag: string }[] };
  return journal.entries.map((entry) => entry.tag);
}
