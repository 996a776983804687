/**
 * What a run measured: the commit and any uncommitted changes to the service's code, and the
 * last migration the service applied. The service is started from the working tree and
 * migrates on every start, so without this a report cannot say which version it describes,
 * or notice that the schema changed between two service starts of one run.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { Database } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The directories whose content is the service under test. */
const SERVICE_PATHS = ["api", "lib", "scripts", "drizzle", "package.json", "package-lock.json"];

/** "4d9594f", plus the service files with uncommitted changes, or "unknown" outside git. */
export function describeCode(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8" }).trim();
    const commit = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "--", ...SERVICE_PATHS)
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(3));
    return dirty.length ? `${commit} + uncommitted changes to ${dirty.join(", ")}` : commit;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** The tag of the newest migration applied to `db` ("0005_plan_once_per_session"). */
export async function schemaTag(db: Database): Promise<string> {
  const [latest] = await queryRows<{ when: string; applied: number }>(
    db,
    sql`select max(created_at)::text as when, count(*)::int as applied
          from drizzle.__drizzle_migrations`,
  );
  if (!latest) return "no migrations";
  const journal = JSON.parse(
    readFileSync(new URL("../drizzle/meta/_journal.json", import.meta.url), "utf8"),
  ) as { entries: { when: number; tag: string }[] };
  const entry = journal.entries.find((candidate) => String(candidate.when) === latest.when);
  return `${entry?.tag ?? `unknown migration (${latest.when})`}, ${latest.applied} applied`;
}
