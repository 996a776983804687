/**
 * What a deployment build may migrate. Vercel builds every pull request as a preview, and a
 * team that sets DATABASE_URL for all environments (a common slip) would have each preview
 * run its migrations on production. So production builds record which database is
 * production, and preview builds refuse to migrate that database.
 *
 * "Which database" is where the connection goes (host without Neon's `-pooler` suffix, port,
 * database name), compared with the recorded row: a Neon branch or a `CREATE DATABASE …
 * TEMPLATE` copy holds the same row but is reached elsewhere, so it is not production.
 */
import { sql } from "drizzle-orm";
import type { Database } from "./database.js";
import { queryRows } from "./query.js";
import { productionDatabase } from "./schema.js";

/** The Vercel environment a build deploys to; a build outside Vercel counts as a preview. */
export type BuildTarget = "production" | "preview" | "development";

/** Where a connection goes, as far as telling production apart is concerned. */
export interface DatabaseLocation {
  host: string;
  port: number;
  database: string;
}

/** May this build migrate the database, and why not. */
export type MigrationDecision = { allowed: true } | { allowed: false; reason: string };

/** The location `url` reaches, with the database name the server reports. */
export async function locateDatabase(db: Database, url: string): Promise<DatabaseLocation> {
  const { hostname, port } = new URL(url);
  const [row] = await queryRows<{ database: string }>(
    db,
    sql`select current_database() as database`,
  );
  if (!row) throw new Error("current_database() returned no row");
  return {
    // Neon's pooled and direct URLs of one endpoint differ only by this suffix.
    host: hostname.toLowerCase().replace(/^([^.]+)-pooler(?=\.|$)/, "$1"),
    port: Number(port || 5432),
    database: row.database,
  };
}

const describe = (location: DatabaseLocation) =>
  `${location.host}:${location.port}/${location.database}`;

/** Decides whether a build for `target` may migrate the database at `here`. */
export async function decideMigration(
  db: Database,
  target: BuildTarget,
  here: DatabaseLocation,
): Promise<MigrationDecision> {
  if (target === "production") return { allowed: true };
  const [tables] = await queryRows<{ marker: boolean; contacts: boolean }>(
    db,
    sql`select to_regclass('public.production_database') is not null as marker,
               to_regclass('public.contacts') is not null as contacts`,
  );
  const recorded = tables?.marker
    ? (await db.select().from(productionDatabase).limit(1))[0]
    : undefined;
  if (recorded) {
    const same =
      recorded.host === here.host &&
      recorded.port === here.port &&
      recorded.database === here.database;
    if (!same) return { allowed: true };
    return {
      allowed: false,
      reason:
        `This ${target} build's database (${describe(here)}) is the production database, ` +
        "recorded by a production build. A preview must not migrate it. Give the Preview " +
        "environment a database of its own: connect Neon's Vercel integration with a branch " +
        "per preview, or set DATABASE_URL for Preview to another database.",
    };
  }
  if (!tables?.contacts) return { allowed: true };
  return {
    allowed: false,
    reason:
      `This ${target} build's database (${describe(here)}) already holds identify's tables, ` +
      "but no production build has recorded which database is production, so it may be " +
      "production. Deploy to production once (its build records its database), then build " +
      "previews on databases branched after that, or give Preview a database of its own.",
  };
}

/** Records `here` as the production database (production builds, after migrating). */
export async function recordProductionDatabase(
  db: Database,
  here: DatabaseLocation,
): Promise<void> {
  await db
    .insert(productionDatabase)
    .values(here)
    .onConflictDoUpdate({
      target: productionDatabase.only,
      set: { ...here, recordedAt: sql`now()` },
    });
}
