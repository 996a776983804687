/**
 * What a deployment build may migrate, and which database is production. Vercel builds every
 * pull request as a preview, and a team that sets DATABASE_URL for all environments (a common
 * slip) would have each preview run its migrations on production. So every build that
 * migrates records, in the database itself, which environment built it and which database
 * that was; a preview build refuses to migrate the database a production build recorded.
 *
 * "Which database" is asked of the server, never read from a URL: the server's system
 * identifier, the database's OID and, on Neon, the branch's timeline. Another host name, an
 * IP, a `?host=` override or the pooled URL of the same database all answer the same; a
 * `CREATE DATABASE … TEMPLATE` copy (a new OID) or a Neon branch (a new timeline) carries the
 * recorded row but answers otherwise, so it is not production.
 */
import { eq, sql } from "drizzle-orm";
import type { Database } from "./database.js";
import { queryRows } from "./query.js";
import { deployment } from "./schema.js";

/** The Vercel environment a build deploys to; a build outside Vercel counts as a preview. */
export type BuildTarget = "production" | "preview" | "development";

/** What the server says about the database a connection reaches. */
export interface DatabaseIdentity {
  /** pg_control_system()'s system identifier; null where the server will not tell. */
  systemIdentifier: string | null;
  /** The database's OID. */
  databaseOid: number;
  /** neon.timeline_id: the Neon branch. Null off Neon. */
  neonTimelineId: string | null;
  /** current_database(), for messages; a renamed database is still the same one. */
  databaseName: string;
}

/** May this build migrate the database, and why not. */
type MigrationDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * Asks the server which database this is, in one statement that cannot fail for want of a
 * privilege (it may run inside a migration's transaction): the system identifier only where
 * this role may call pg_control_system() (CASE evaluates the sub-select only then), and the
 * timeline through pg_settings, which hides a setting this role may not read instead of
 * raising an error.
 */
export async function identifyDatabase(db: Database): Promise<DatabaseIdentity> {
  const [row] = await queryRows<{
    oid: string | number;
    name: string;
    system: string | null;
    timeline: string | null;
  }>(
    db,
    sql`select d.oid::bigint as oid, d.datname::text as name,
               case when has_function_privilege('pg_control_system()', 'execute')
                    then (select system_identifier::text from pg_control_system()) end as system,
               (select nullif(setting, '') from pg_settings where name = 'neon.timeline_id') as timeline
          from pg_database d where d.datname = current_database()`,
  );
  if (!row) throw new Error("pg_database has no row for current_database()");
  return {
    systemIdentifier: row.system,
    databaseOid: Number(row.oid),
    neonTimelineId: row.timeline,
    databaseName: row.name,
  };
}

/**
 * True when two identities are one database: every fact both sides know agrees. A fact one
 * side cannot read is not taken as a difference, so a doubt makes a copy look like the
 * original (a preview is refused), never the original like a copy.
 */
export function sameDatabase(a: DatabaseIdentity, b: DatabaseIdentity): boolean {
  const agree = (x: string | null, y: string | null) => x === null || y === null || x === y;
  return (
    a.databaseOid === b.databaseOid &&
    agree(a.systemIdentifier, b.systemIdentifier) &&
    agree(a.neonTimelineId, b.neonTimelineId)
  );
}

/**
 * True when two identities report exactly the same facts, unknown ones included: for two
 * connections of one role to one server (the pooled and the unpooled URL), where any
 * difference at all means two databases.
 */
export function identicalDatabases(a: DatabaseIdentity, b: DatabaseIdentity): boolean {
  return (
    a.databaseOid === b.databaseOid &&
    a.systemIdentifier === b.systemIdentifier &&
    a.neonTimelineId === b.neonTimelineId
  );
}

/** A database's name and identity, for messages (no host: the server told us, not a URL). */
export function describeDatabase(identity: DatabaseIdentity): string {
  const facts = [
    `oid ${identity.databaseOid}`,
    identity.systemIdentifier ? `system ${identity.systemIdentifier}` : undefined,
    identity.neonTimelineId ? `Neon timeline ${identity.neonTimelineId}` : undefined,
  ].filter(Boolean);
  return `"${identity.databaseName}" (${facts.join(", ")})`;
}

/** The recorded deployment, or undefined when none built against this database (or it predates the table). */
export async function readDeployment(db: Database) {
  const [table] = await queryRows<{ present: boolean }>(
    db,
    sql`select to_regclass('public.deployment') is not null as present`,
  );
  if (!table?.present) return undefined;
  const [row] = await db.select().from(deployment).where(eq(deployment.only, true));
  return row;
}

/**
 * Decides whether a build for `target` may migrate the database `here` is. Production builds
 * always may. A preview build may migrate a database of its own (empty, or recorded by a
 * preview build: every later deploy of that preview migrates it again) or a copy of
 * production; never production itself, nor a database that holds identify's tables with no
 * record of who built it, which may be a production deployed before builds recorded it.
 */
export async function decideMigration(
  db: Database,
  target: BuildTarget,
  here: DatabaseIdentity,
): Promise<MigrationDecision> {
  if (target === "production") return { allowed: true };
  const recorded = await readDeployment(db);
  if (recorded) {
    if (recorded.role !== "production" || !sameDatabase(recorded, here)) return { allowed: true };
    return {
      allowed: false,
      reason:
        `This ${target} build's database, ${describeDatabase(here)}, is the production ` +
        "database, recorded by a production build. A preview must not migrate it. Give the " +
        "Preview environment a database of its own: connect Neon's Vercel integration with a " +
        "branch per preview, or set DATABASE_URL for Preview to another database.",
    };
  }
  const [tables] = await queryRows<{ contacts: boolean }>(
    db,
    sql`select to_regclass('public.contacts') is not null as contacts`,
  );
  if (!tables?.contacts) return { allowed: true };
  return {
    allowed: false,
    reason:
      `This ${target} build's database, ${describeDatabase(here)}, already holds identify's ` +
      "tables, but no build has recorded which database it is, so it may be production. " +
      "Deploy to production once (its build records its database), then build previews on " +
      "databases branched after that, or give Preview a new, empty database of its own.",
  };
}

/**
 * Records that a `role` build migrated `here` and runs with `guardrails`: production builds
 * and previews alike (`guardrails` is lib/guardrails.ts's options object), so that a preview's own database is known as its own on the next
 * deploy, and the tools find the guardrails of whichever deployment uses this database.
 */
export async function recordDeployment(
  db: Database,
  role: "production" | "preview",
  here: DatabaseIdentity,
  guardrails: object,
): Promise<void> {
  const row = { role, ...here, guardrails, recordedAt: sql`now()` };
  await db.insert(deployment).values(row).onConflictDoUpdate({ target: deployment.only, set: row });
}
