/**
 * The migration script as Vercel runs it before a deployment goes live (`npm run
 * vercel-build`) and as an operator runs it from a checkout (`npm run db:migrate`): it
 * creates the schema on a fresh database, changes nothing the second time, fails the build
 * plainly when no database is configured, and tells production from its copies by asking
 * the server, whatever the URL looks like.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { identifyDatabase, readDeployment, recordDeployment } from "../lib/db/deployment.js";
import { applyMigrations, ProductionMigrationRefused } from "../lib/db/migrate.js";
import {
  ADMIN_URL,
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runMain } from "./support/scripts.js";

const journal = JSON.parse(
  await readFile(new URL("../drizzle/meta/_journal.json", import.meta.url), "utf8"),
) as { entries: unknown[] };

/**
 * Runs `tsx scripts/migrate.ts --deploy` with only the given database variables, and an API
 * key: a deploy build refuses to run without one (deploy-access.test.ts).
 */
const deployMigrate = (env: Record<string, string>) =>
  runMain("scripts/migrate.ts", ["--deploy"], {
    API_KEYS: "k3y-for-migrate-tests-0123456789",
    ...env,
  });

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
        // The same database, spelled otherwise: the build checks that both reach one.
        DATABASE_URL: database.url.replace("127.0.0.1", "localhost"),
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
      const nameOf = (url: string) => new URL(url).pathname.slice(1);
      const urlOf = (name: string) => {
        const url = new URL(production.url);
        url.pathname = `/${name}`;
        return url.toString();
      };
      /** A copy of `url`'s database, as a Neon branch is: same rows, another database. */
      const copyOf = async (url: string) => {
        const name = `${nameOf(production.url)}_copy${copies.length}`;
        await admin.db.execute(sql.raw(`create database ${name} template ${nameOf(url)}`));
        copies.push(name);
        return urlOf(name);
      };
      const deploymentOf = async (url: string) => {
        const inspect = await connect({ DATABASE_URL: url });
        try {
          return await readDeployment(inspect.db);
        } finally {
          await inspect.close();
        }
      };

      beforeAll(async () => {
        production = await createPostgresDatabase();
        admin = await connect({ DATABASE_URL: ADMIN_URL });
        const built = await deployMigrate({
          VERCEL_ENV: "production",
          DATABASE_URL: production.url,
          JUNK_EMAILS: "test@test.com",
        });
        expect(built.output).toContain("migration(s) applied");
        expect(built.code).toBe(0);
      });
      afterAll(async () => {
        for (const name of copies) {
          await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
        }
        await admin.close();
        await production.drop();
      });

      it("records, from the server itself, which database a production build migrated", async () => {
        const inspect = await connect({ DATABASE_URL: production.url });
        try {
          const here = await identifyDatabase(inspect.db);
          const recorded = await readDeployment(inspect.db);
          expect(recorded?.role).toBe("production");
          expect(recorded?.databaseOid).toBe(here.databaseOid);
          expect(recorded?.systemIdentifier).toBe(here.systemIdentifier);
          expect(recorded?.guardrails).toMatchObject({ junkEmails: ["test@test.com"] });
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

      it("fails a preview build that reaches production through localhost", async () => {
        const result = await deployMigrate({
          VERCEL_ENV: "preview",
          DATABASE_URL: production.url.replace("127.0.0.1", "localhost"),
        });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(/is the production database/);
      });

      it("fails a preview build that reaches production through a ?host= override", async () => {
        const url = new URL(production.url);
        const aliased = `postgres://${url.username}@some-alias:5432${url.pathname}?host=${url.hostname}&port=${url.port || 5432}`;
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: aliased });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(/is the production database/);
      });

      it("fails a preview build whose unpooled URL is a copy while the function's URL is production, writing nothing", async () => {
        const copy = await copyOf(production.url);
        const before = await deploymentOf(copy);
        const result = await deployMigrate({
          VERCEL_ENV: "preview",
          DATABASE_URL: production.url,
          DATABASE_URL_UNPOOLED: copy,
        });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          /DATABASE_URL and DATABASE_URL_UNPOOLED reach different databases/,
        );
        expect(await deploymentOf(copy)).toEqual(before);
      });

      it("treats a build that names no Vercel environment as a preview", async () => {
        const result = await deployMigrate({ DATABASE_URL: production.url });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          /This preview build's database, .* is the production database/,
        );
      });

      it("migrates a preview build's own copy of production, and records it as the preview's", async () => {
        const copy = await copyOf(production.url);
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: copy });
        expect(result.output).toMatch(
          /Migrating "[^"]*_copy\d+" .* \(DATABASE_URL from the environment\) for a preview build/,
        );
        expect(result.output).toMatch(/migration\(s\) applied; "[^"]*_copy\d+" .* is up to date/);
        expect(result.code).toBe(0);
        expect((await deploymentOf(copy))?.role).toBe("preview");
      });

      it("migrates a preview's own empty database on every deploy", async () => {
        const own = await createPostgresDatabase({ migrated: false });
        try {
          for (const attempt of [1, 2]) {
            const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: own.url });
            expect({ attempt, code: result.code }).toEqual({ attempt, code: 0 });
          }
          expect((await deploymentOf(own.url))?.role).toBe("preview");
        } finally {
          await own.drop();
        }
      });

      it("still migrates production from a production build after previews ran on copies", async () => {
        const result = await deployMigrate({
          VERCEL_ENV: "production",
          DATABASE_URL: production.url,
        });
        expect(result.code).toBe(0);
        expect(result.output).toMatch(/0 migration\(s\) applied/);
      });

      it("refuses a preview build on a database with identify's tables that no build recorded", async () => {
        const copy = await copyOf(production.url);
        const unmarked = await connect({ DATABASE_URL: copy });
        await unmarked.db.execute(sql`delete from deployment`);
        await unmarked.close();
        const result = await deployMigrate({ VERCEL_ENV: "preview", DATABASE_URL: copy });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(/no build has recorded which database it is/);
      });

      it("refuses db:migrate from a checkout on production with migrations to apply, naming the database and the flag", async () => {
        // A copy recorded as production stands in for production with one migration pending.
        const copy = await copyOf(production.url);
        const staged = await connect({ DATABASE_URL: copy });
        try {
          await staged.db.execute(sql`delete from drizzle.__drizzle_migrations
            where created_at = (select max(created_at) from drizzle.__drizzle_migrations)`);
          await staged.db.execute(sql`update deployment set database_oid =
            (select oid from pg_database where datname = current_database())`);
        } finally {
          await staged.close();
        }
        const result = await runMain("scripts/migrate.ts", [], { DATABASE_URL: copy });
        expect(result.code).toBe(1);
        expect(result.output).toMatch(
          new RegExp(`"${nameOf(copy)}" .*is the production database.*1 migration\\(s\\)`),
        );
        expect(result.output).toMatch(/--migrate-production/);
        const inspect = await connect({ DATABASE_URL: copy });
        try {
          const rows = await inspect.db.execute(
            sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
          );
          expect((rows as unknown as { rows: { n: number }[] }).rows[0]?.n).toBe(
            journal.entries.length - 1,
          );
        } finally {
          await inspect.close();
        }
      });
    });
  });

  describe.skipIf(!postgresAvailable())("on PostgreSQL, from a checkout", () => {
    describe("migrations the production database has not shipped", () => {
      let production: TestDatabase;
      let connection: Connection;
      let folder: string;

      beforeAll(async () => {
        production = await createPostgresDatabase();
        connection = await connect({ DATABASE_URL: production.url });
        await recordDeployment(
          connection.db,
          "production",
          await identifyDatabase(connection.db),
          {},
        );
        // drizzle/ plus one migration production has not shipped, as a branch checkout has.
        folder = await mkdtemp(join(tmpdir(), "identify-migrations-"));
        await cp(new URL("../drizzle", import.meta.url), folder, { recursive: true });
        const journalFile = join(folder, "meta", "_journal.json");
        const entries = journal.entries as { idx: number; when: number; tag: string }[];
        const last = entries.at(-1);
        if (!last) throw new Error("empty journal");
        const tag = `${String(last.idx + 1).padStart(4, "0")}_unshipped`;
        await writeFile(join(folder, `${tag}.sql`), "create table unshipped (id integer);");
        await writeFile(
          journalFile,
          JSON.stringify({
            ...journal,
            entries: [
              ...entries,
              { idx: last.idx + 1, version: "7", when: last.when + 1, tag, breakpoints: true },
            ],
          }),
        );
      });
      afterAll(async () => {
        await connection.close();
        await production.drop();
        await rm(folder, { recursive: true, force: true });
      });

      const unshippedExists = async () => {
        const result = (await connection.db.execute(
          sql`select to_regclass('public.unshipped') is not null as present`,
        )) as unknown as { rows: { present: boolean }[] };
        return result.rows[0]?.present;
      };

      it("are refused without the explicit flag, and nothing is applied", async () => {
        await expect(applyMigrations(connection.db, { migrationsFolder: folder })).rejects.toThrow(
          ProductionMigrationRefused,
        );
        expect(await unshippedExists()).toBe(false);
      });

      it("are applied when the operator allows production explicitly", async () => {
        const report = await applyMigrations(connection.db, {
          migrationsFolder: folder,
          allowProduction: true,
        });
        expect(report.applied).toEqual([expect.stringMatching(/_unshipped$/)]);
        expect(await unshippedExists()).toBe(true);
      });
    });
  });
});
