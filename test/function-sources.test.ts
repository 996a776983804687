/**
 * The function- and trigger-source check (scripts/sql-functions.ts, run by
 * `npm run check:functions` on PGlite) fails where it should: a file changed without its
 * migration, a function or trigger a later migration changed behind its file, one without a
 * file, a file that changes a signature, a trigger file that creates more than its trigger.
 * On PostgreSQL, a freshly migrated database matches the files exactly.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../lib/db/client.js";
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

describe("the function and trigger sources", () => {
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

  it("report a trigger file changed without a migration", async () => {
    const changed = edited("erasures_append_only", (text) =>
      text.replace("UPDATE OR DELETE", "UPDATE"),
    );
    expect(sourceProblems(changed, await readMigratedCopies())).toEqual([
      {
        kind: "trigger",
        name: "erasures_append_only",
        message: expect.stringMatching(
          /^drizzle\/triggers\/erasures_append_only\.sql changed since its copy in drizzle\/\d{4}_\w+\.sql: run npm run db:functions/,
        ),
      },
    ]);
  });

  it("report a trigger file that creates a function besides its trigger", async () => {
    const extra = edited(
      "erasures_append_only",
      (text) =>
        `CREATE OR REPLACE FUNCTION erasures_stray() RETURNS trigger LANGUAGE sql AS 'SELECT NULL';\n${text}`,
    );
    expect(sourceProblems(extra, await readMigratedCopies())[0]?.message).toBe(
      "drizzle/triggers/erasures_append_only.sql must create exactly one trigger, named erasures_append_only and not schema-qualified (it creates: function erasures_stray, trigger erasures_append_only)",
    );
  });

  it("report a trigger file whose trigger is named unlike the file", async () => {
    const renamed = edited("erasures_append_only", (text) =>
      text.replace("TRIGGER erasures_append_only", "TRIGGER erasures_frozen"),
    );
    expect(sourceProblems(renamed, await readMigratedCopies())[0]?.message).toMatch(
      /must create exactly one trigger, named erasures_append_only and not schema-qualified \(it creates: trigger erasures_frozen\)$/,
    );
  });

  it("report a trigger file that runs a statement besides its trigger", async () => {
    const disabled = edited(
      "erasures_append_only",
      (text) => `${text}ALTER TABLE erasures DISABLE TRIGGER erasures_append_only;\n`,
    );
    expect(sourceProblems(disabled, await readMigratedCopies())[0]?.message).toBe(
      "drizzle/triggers/erasures_append_only.sql must hold its CREATE OR REPLACE TRIGGER statement and nothing else",
    );
  });
});

const backend = postgresBackend();

describe.skipIf(!backend.available)("a migrated PostgreSQL database", () => {
  let db: Database;
  beforeAll(async () => {
    db = (await backend.open()).db;
  });
  afterAll(() => backend.dispose());

  it("has exactly one function or trigger for each file, defined as the file says", async () => {
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

  it("is reported when a trigger has no file", async () => {
    const { problems, stale } = await rolledBack(db, async (tx) => {
      await tx.execute(sql`
        create trigger contacts_stray before delete on contacts
        for each row execute function erasures_refuse_change()`);
      return compareWithDatabase(tx, sources);
    });
    expect(problems.map((problem) => problem.message)).toEqual([
      "contacts_stray ON contacts is in the migrated database but has no file drizzle/triggers/contacts_stray.sql",
    ]);
    expect(stale.map((object) => `${object.kind} ${object.name} ON ${object.identity}`)).toEqual([
      "trigger contacts_stray ON contacts",
    ]);
  });

  it("is reported when a trigger file differs from the trigger", async () => {
    const { problems, stale } = await compareWithDatabase(
      db,
      edited("erasures_append_only", (text) => text.replace("UPDATE OR DELETE", "UPDATE")),
    );
    expect(problems.map((problem) => problem.message)).toEqual([
      'drizzle/triggers/erasures_append_only.sql differs from the migrated database\'s erasures_append_only: line 1 of the definition is "CREATE TRIGGER erasures_append_only BEFORE DELETE OR UPDATE ON public.erasures FOR EACH ROW EXECUTE FUNCTION erasures_refuse_change()" in the database, "CREATE TRIGGER erasures_append_only BEFORE UPDATE ON public.erasures FOR EACH ROW EXECUTE FUNCTION erasures_refuse_change()" in the file',
    ]);
    expect(stale).toEqual([]);
  });

  it("is reported when a later migration disabled a trigger", async () => {
    const { problems } = await rolledBack(db, async (tx) => {
      await tx.execute(
        sql`alter table identity_events disable trigger identity_events_append_only`,
      );
      return compareWithDatabase(tx, sources);
    });
    expect(problems.map((problem) => problem.message)).toEqual([
      expect.stringMatching(
        /^drizzle\/triggers\/identity_events_append_only\.sql differs from the migrated database's identity_events_append_only: line 1 of the definition is ".*\(\) \(disabled\)" in the database/,
      ),
    ]);
  });

  it("is reported when a trigger file moves its trigger to another table, which needs a drop", async () => {
    const { problems, stale } = await compareWithDatabase(
      db,
      edited("erasures_append_only", (text) =>
        text.replace("DELETE ON erasures", "DELETE ON identity_events"),
      ),
    );
    expect(problems.map((problem) => problem.message)).toEqual([
      "drizzle/triggers/erasures_append_only.sql declares erasures_append_only ON identity_events but the migrated database has erasures_append_only ON erasures: run npm run db:functions -- --name=<what_changed>",
    ]);
    expect(stale.map((object) => `${object.name} ON ${object.identity}`)).toEqual([
      "erasures_append_only ON erasures",
    ]);
  });
});
