/**
 * The function-source check (scripts/sql-functions.ts, run by `npm run check:functions` on
 * PGlite) fails where it should: a file changed without its migration, a function a later
 * migration changed behind its file, a function without a file, a file that changes a
 * signature. On PostgreSQL, a freshly migrated database matches the files exactly.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../lib/db/client.js";
import {
  CUSTOMER_LOCK_SPACE,
  SQLSTATE_CUSTOMER_CHANGED,
  SQLSTATE_CUSTOMER_TOO_LARGE,
} from "../lib/db/sql-contract.js";
import {
  compareWithDatabase,
  readMigratedCopies,
  readSqlSources,
  rolledBack,
  type SqlSource,
  sourceProblems,
} from "../scripts/sql-functions.js";
import { postgresBackend } from "./support/databases.js";

const sources = await readSqlSources();

/** The sources with one file's text edited, as a developer would in an editor. */
function edited(name: string, edit: (text: string) => string): SqlSource[] {
  return sources.map((source) =>
    source.name === name ? { ...source, text: edit(source.text) } : source,
  );
}

describe("the function sources", () => {
  it("each match their copy in the latest migration carrying one", async () => {
    expect(sourceProblems(sources, await readMigratedCopies())).toEqual([]);
  });

  it("report a file changed without a migration", async () => {
    const changed = edited("identify_settle", (text) => text.replace("changed := 0;", ""));
    expect(sourceProblems(changed, await readMigratedCopies())).toEqual([
      {
        kind: "function",
        name: "identify_settle",
        message: expect.stringMatching(
          /^drizzle\/functions\/identify_settle\.sql changed since its copy in drizzle\/\d{4}_\w+\.sql: run npm run db:functions/,
        ),
      },
    ]);
  });

  it("report a file that schema-qualifies its function", async () => {
    const qualified = edited("identify_settle", (text) =>
      text.replace("FUNCTION identify_settle(", "FUNCTION public.identify_settle("),
    );
    expect(sourceProblems(qualified, await readMigratedCopies())[0]?.message).toMatch(
      /must create exactly one function, named identify_settle and not schema-qualified/,
    );
  });
});

describe("lib/db/sql-contract.ts", () => {
  it("names the error codes and the lock space identify_contact uses", () => {
    const text = sources.find((source) => source.name === "identify_contact")?.text;
    expect(text).toContain(`USING ERRCODE = '${SQLSTATE_CUSTOMER_TOO_LARGE}'`);
    expect(text).toContain(`USING ERRCODE = '${SQLSTATE_CUSTOMER_CHANGED}'`);
    expect(text).toContain(`EXCEPTION WHEN SQLSTATE '${SQLSTATE_CUSTOMER_CHANGED}'`);
    expect(text).toContain(`c_customer_lock_space CONSTANT integer := ${CUSTOMER_LOCK_SPACE};`);
  });

  it("names the retry code and the lock space identify_lock_customer uses", () => {
    const text = sources.find((source) => source.name === "identify_lock_customer")?.text;
    expect(text).toContain(`EXCEPTION WHEN SQLSTATE '${SQLSTATE_CUSTOMER_CHANGED}'`);
    expect(text).toContain(`c_customer_lock_space CONSTANT integer := ${CUSTOMER_LOCK_SPACE};`);
  });
});

const backend = postgresBackend();

describe.skipIf(!backend.available)("a migrated PostgreSQL database", () => {
  let db: Database;
  beforeAll(async () => {
    db = (await backend.open()).db;
  });
  afterAll(() => backend.dispose());

  it("has exactly one function for each file, defined as the file says", async () => {
    expect(await compareWithDatabase(db, sources)).toEqual({ broken: [], problems: [], stale: [] });
  });

  it("is reported when a later migration changed a function or added one without a file", async () => {
    const { problems, stale } = await rolledBack(db, async (tx) => {
      await tx.execute(sql`alter function identify_settle(integer[], text) set work_mem = '1MB'`);
      await tx.execute(
        sql`create function identify_stray() returns integer language sql as 'select 1'`,
      );
      return compareWithDatabase(tx, sources);
    });
    expect(problems.map((problem) => problem.message)).toEqual([
      "identify_stray() is in the migrated database but has no file drizzle/functions/identify_stray.sql",
      expect.stringMatching(
        /^drizzle\/functions\/identify_settle\.sql differs from the migrated database's identify_settle: line \d+ of the definition is " SET work_mem TO '1MB'" in the database/,
      ),
    ]);
    expect(stale.map((f) => f.name)).toEqual(["identify_stray"]);
  });

  it("is reported when a file changes a body, and a signature, which needs a drop", async () => {
    const changed = edited("identify_junk_list", (text) =>
      text.replaceAll("p_key", "p_list").replace("RETURN NULL;", "RETURN '{}';"),
    );
    const { problems, stale } = await compareWithDatabase(
      db,
      edited("identify_is_junk", (text) => text.replace("RETURN false;\nEND", "RETURN NULL;\nEND")),
    );
    expect(problems).toEqual([
      {
        kind: "function",
        name: "identify_is_junk",
        message: expect.stringMatching(
          /identify_is_junk\.sql differs from the migrated database's/,
        ),
      },
    ]);
    expect(stale).toEqual([]);

    const renamed = await compareWithDatabase(db, changed);
    expect(renamed.problems.map((problem) => problem.message)).toEqual([
      "drizzle/functions/identify_junk_list.sql changes the signature of identify_junk_list(p_options jsonb, p_key text): run npm run db:functions -- --name=<what_changed>",
    ]);
    expect(renamed.stale.map((f) => `${f.name}(${f.identity})`)).toEqual([
      "identify_junk_list(p_options jsonb, p_key text)",
    ]);
  });
});
