/**
 * The migration script as Vercel runs it before a deployment goes live (`npm run
 * vercel-build`): it creates the schema on a fresh database, changes nothing the second
 * time, and fails the build plainly when no database is configured.
 */
import { readFile } from "node:fs/promises";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runScript } from "./support/scripts.js";

const journal = JSON.parse(
  await readFile(new URL("../drizzle/meta/_journal.json", import.meta.url), "utf8"),
) as { entries: unknown[] };

/** Runs `tsx scripts/migrate.ts --deploy` with only the given database variables. */
const deployMigrate = (env: Record<string, string>) =>
  runScript("scripts/migrate.ts", ["--deploy"], env);

describe("the deploy-time migration script", () => {
  it("fails the build with a plain message when no database URL is configured", async () => {
    const result = await deployMigrate({});
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/No database configured for this deployment: set DATABASE_URL/);
  });

  describe.skipIf(!postgresAvailable())("on a fresh PostgreSQL database", () => {
    let database: TestDatabase;
    let inspect: Connection;
    const snapshot = async () => {
      const result = (await inspect.db.execute(sql`
        select (select count(*) from drizzle.__drizzle_migrations)::int as migrations,
               (select count(*) from pg_proc where proname = 'identify_contact')::int as functions,
               to_regclass('public.contacts') is not null as has_contacts`)) as unknown as {
        rows: Record<string, unknown>[];
      };
      return result.rows[0];
    };

    beforeAll(async () => {
      // Empty, not a copy of the migrated template: the script must build the schema.
      database = await createPostgresDatabase({ migrated: false });
      inspect = await connect({ DATABASE_URL: database.url });
    });
    afterAll(async () => {
      await inspect.close();
      await database.drop();
    });

    it("creates the schema from DATABASE_URL_UNPOOLED, then changes nothing when run again", async () => {
      const first = await deployMigrate({
        DATABASE_URL_UNPOOLED: database.url,
        DATABASE_URL: "postgres://pooled.invalid:5432/never-used",
      });
      expect(first.output).toContain("DATABASE_URL_UNPOOLED");
      expect(first.code).toBe(0);
      const afterFirst = await snapshot();
      expect(afterFirst).toEqual({
        migrations: journal.entries.length,
        functions: 1,
        has_contacts: true,
      });

      const second = await deployMigrate({ DATABASE_URL: database.url });
      expect(second.code).toBe(0);
      expect(await snapshot()).toEqual(afterFirst);
    });
  });
});
