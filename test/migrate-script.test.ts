/**
 * The migration script as Vercel runs it before a deployment goes live (`npm run
 * vercel-build`): it creates the schema on a fresh database, changes nothing the second
 * time, and fails the build plainly when no database is configured.
 */
import { readFile } from "node:fs/promises";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { productionDatabase } from "../lib/db/schema.js";
import {
  ADMIN_URL,
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
        VERCEL_ENV: "production",
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

      const second = await deployMigrate({ VERCEL_ENV: "production", DATABASE_URL: database.url });
      expect(second.code).toBe(0);
      expect(await snapshot()).toEqual(afterFirst);
    });
  });

  // A plain describe inside gives its hooks a scope biome's duplicate-hook rule recognizes.
  describe.skipIf(!postgresAvailable())("on PostgreSQL", () => {
    describe("on production and its copies", () => {
      let production: TestDatabase;
      let admin: Connection;
      const copies: string[] = [];
      const urlOf = (name: string) => {
        const url = new URL(production.url);
        url.pathname = `/${name}`;
        return url.toString();
      };
      /** A copy of production's data, as a Neon branch is: same rows, reached elsewhere. */
      const branchOfProduction = async () => {
        const name = `${new URL(production.url).pathname.slice(1)}_branch${copies.length}`;
        await admin.db.execute(
          sql.raw(`create database ${name} template ${new URL(production.url).pathname.slice(1)}`),
        );
        copies.push(name);
        return urlOf(name);
      };

      beforeAll(async () => {
        production = await createPostgresDatabase();
        admin = await connect({ DATABASE_URL: ADMIN_URL });
        const built = await deployMigrate({
          VERCEL_ENV: "production",
          DATABASE_URL: production.url,
        });
        expect(built.code).toBe(0);
      });
      afterAll(async () => {
        for (const name of copies) {
          await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
        }
        await admin.close();
        await production.drop();
      });

      it("records the production database when a production build migrates it", async () => {
        const inspect = await connect({ DATABASE_URL: production.url });
        try {
          const rows = await inspect.db.select().from(productionDatabase);
          const url = new URL(production.url);
          expect(rows.map(({ host, port, database }) => ({ host, port, database }))).toEqual([
            { host: url.hostname, port: Number(url.port || 5432), database: url.pathname.slice(1) },
          ]);
        } finally {
          await inspect.close();
        }
      });

      it("fails a preview build pointed at the production database, saying how to fix it", async () => {
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: production.url });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(/Refusing to migrate: .* is the production database/);
        expect(result.output).toMatch(/Give the Preview environment a database of its own/);
      });

      it("treats a build that names no Vercel environment as a preview", async () => {
        const result = await deployMigrate({ DATABASE_URL: production.url });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          /This preview build's database .* is the production database/,
        );
      });

      it("migrates a preview build's own branch of production", async () => {
        const branch = await branchOfProduction();
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: branch });
        expect(result.output).toMatch(
          /Migrating .*_branch\d+ \(DATABASE_URL from the environment\) for a preview build/,
        );
        expect(result.output).toMatch(/migration\(s\) applied; .*_branch\d+ .* is up to date/);
        expect(result.code).toBe(0);
      });

      it("still migrates production from a production build after previews ran on branches", async () => {
        const result = await deployMigrate({
          VERCEL_ENV: "production",
          DATABASE_URL: production.url,
        });
        expect(result.code).toBe(0);
        expect(result.output).toMatch(/0 migration\(s\) applied/);
      });

      it("refuses a preview build on a database with identify's tables that no production build recorded", async () => {
        const branch = await branchOfProduction();
        const unmarked = await connect({ DATABASE_URL: branch });
        await unmarked.db.execute(sql`delete from production_database`);
        await unmarked.close();
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: branch });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          /no production build has recorded which database is production/,
        );
      });
    });
  });
});
