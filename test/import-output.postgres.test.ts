/**
 * What `npm run import` prints when it fails, from a source of 20,000 people: a failed
 * import's output goes to terminals, CI logs and tickets, and it once printed 600 KB holding
 * 5,000 of the source's emails and phone numbers (Drizzle's "Failed query" message lists
 * every bound value of the failed batch). Whatever fails, and wherever, the output must hold
 * the reason and no value.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runMain } from "./support/scripts.js";

const ROWS = 20_000;
const phone = (i: number) => `+4479${String(i).padStart(8, "0")}`;

/** Output this long is a reason, not a dump (the report of a successful run is ~500 bytes). */
const SMALL = 2_000;

/** Fails the test naming the first source value the output holds, if any. */
function expectNoSourceValue(output: string): void {
  expect(output).not.toContain("@");
  expect(output).not.toContain("params");
  for (let i = 1; i <= ROWS; i++) {
    // The digits alone too: a message might have dropped the "+".
    if (output.includes(phone(i).slice(1))) expect.fail(`the output holds ${phone(i)}`);
  }
}

describe.skipIf(!postgresAvailable())("the output of npm run import", () => {
  let sourceDatabase: TestDatabase;

  beforeAll(async () => {
    sourceDatabase = await createPostgresDatabase({ migrated: false });
    const source = await connect({ DATABASE_URL: sourceDatabase.url });
    try {
      // No primary key, as some legacy tables have none: id 7000 twice makes the second
      // batch's staging statement fail, deterministically, with 5,000 people bound to it.
      await source.db.execute(sql`create table contact (
        id int, phonenumber varchar, email varchar, linkedid int, linkprecedence varchar,
        createdat timestamp not null, updatedat timestamp not null, deletedat timestamp)`);
      await source.db.execute(sql`insert into contact
        (id, phonenumber, email, linkprecedence, createdat, updatedat)
        select i, '+4479' || lpad(i::text, 8, '0'), 'person' || i || '@example.com', 'primary',
               timestamp '2023-01-01' + i * interval '1 minute',
               timestamp '2023-01-01' + i * interval '1 minute'
          from generate_series(1, ${ROWS}) i`);
      await source.db.execute(sql`create index on contact (id)`);
    } finally {
      await source.close();
    }
  });
  afterAll(async () => {
    await sourceDatabase?.drop();
  });

  /** Runs the command into a new migrated database, dropped afterwards. */
  async function runImport(env: Record<string, string> = {}) {
    const target = await createPostgresDatabase({ migrated: true });
    try {
      return await runMain("scripts/import.ts", ["--from", sourceDatabase.url], {
        DATABASE_URL: target.url,
        ...env,
      });
    } finally {
      await target.drop();
    }
  }

  describe("with a source row whose id another row has too", () => {
    let result: Awaited<ReturnType<typeof runImport>>;
    beforeAll(async () => {
      const source = await connect({ DATABASE_URL: sourceDatabase.url });
      try {
        await source.db.execute(sql`insert into contact
          (id, phonenumber, email, linkprecedence, createdat, updatedat)
          values (7000, '+447900099999', 'twin@example.com', 'primary', now(), now())`);
      } finally {
        await source.close();
      }
      result = await runImport();
    });
    afterAll(async () => {
      const source = await connect({ DATABASE_URL: sourceDatabase.url });
      try {
        await source.db.execute(sql`delete from contact where email = 'twin@example.com'`);
      } finally {
        await source.close();
      }
    });

    it("fails part-way printing the database's reason and SQLSTATE, and no source value", () => {
      expect(result.code).toBe(1);
      expect(result.output).toContain("read 5000 rows");
      expect(result.output).toContain(
        'Import failed; nothing was imported: duplicate key value violates unique constraint "identify_import_rows_pkey" (SQLSTATE 23505)',
      );
      expectNoSourceValue(result.output);
      expect(result.output.length).toBeLessThan(SMALL);
    });

    it("never prints the database's detail, which quotes the key", () => {
      expect(result.output).not.toContain("already exists");
      expect(result.output).not.toContain("Key (id)");
    });
  });

  // Where a query timeout strikes depends on the machine: migrating, reading, staging,
  // settling, or nowhere. Whatever the outcome, the output is a report or a short reason.
  it.each([15, 30, 60, 120])(
    "with DB_QUERY_TIMEOUT_MS=%i, either imports or fails with a short reason and no source value",
    async (ms) => {
      const result = await runImport({ DB_QUERY_TIMEOUT_MS: String(ms) });
      if (result.code === 0) {
        expect(result.output).toMatch(/rows read\s+20000\n/);
      } else {
        expect(result.code).toBe(1);
        expect(result.output).toMatch(/Import failed; nothing was imported: \S/);
      }
      expectNoSourceValue(result.output);
      expect(result.output.length).toBeLessThan(SMALL);
    },
  );

  it("prints no password of a --from URL whose database does not exist", async () => {
    const from = new URL(sourceDatabase.url);
    from.username = "postgres";
    from.password = "hunter2-secret";
    from.pathname = "/no_such_database_here";
    const target = await createPostgresDatabase({ migrated: true });
    try {
      const result = await runMain("scripts/import.ts", ["--from", from.toString()], {
        DATABASE_URL: target.url,
      });
      expect(result.code).toBe(1);
      expect(result.output).toContain(
        'database "no_such_database_here" does not exist (SQLSTATE 3D000)',
      );
      expect(result.output).not.toContain("hunter2");
    } finally {
      await target.drop();
    }
  });
});
