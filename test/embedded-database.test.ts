/**
 * The embedded database: created and migrated in a new folder, persisted there, one process
 * at a time, never on Vercel.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type Connection, closeDatabase } from "../lib/db/client.js";
import { DatabaseUnavailableError } from "../lib/db/errors.js";
import { queryRows } from "../lib/db/query.js";
import { clonePglite, connect, scratchFolder } from "./support/databases.js";
import { postIdentify } from "./support/http.js";
import { runMain, type ScriptRun } from "./support/scripts.js";

const journal = JSON.parse(
  await readFile(new URL("../drizzle/meta/_journal.json", import.meta.url), "utf8"),
) as { entries: unknown[] };

const open = (dir: string) => connect({ PGLITE_DIR: dir, PGLITE_LOCK_WAIT_MS: "300" });

describe("the embedded database", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  /**
   * A folder that already holds a migrated database, for the tests of who may open it:
   * creating one from nothing costs seconds of CPU, and the tests below do it once.
   */
  async function migratedDir() {
    const folder = await clonePglite();
    cleanup.push(() => folder.remove());
    return folder.dir;
  }

  describe("in a PGLITE_DIR that does not exist yet", () => {
    let parent: string;
    let dir: string;
    let first: ScriptRun;
    beforeAll(async () => {
      parent = await scratchFolder();
      dir = join(parent, "data");
      first = await runMain("scripts/migrate.ts", [], { PGLITE_DIR: dir });
    });
    afterAll(() => rm(parent, { recursive: true, force: true }));

    it("has db:migrate create it and say how many migrations it applied", () => {
      expect(first.output).toContain(
        `${journal.entries.length} migration(s) applied; the embedded database (${dir})`,
      );
      expect(first.code).toBe(0);
    });

    it("holds every migration and the tables once created", async () => {
      const connection = await open(dir);
      cleanup.push(() => connection.close());
      const [row] = await queryRows<{ migrations: number; hasContacts: boolean }>(
        connection.db,
        sql`select (select count(*) from drizzle.__drizzle_migrations)::int as "migrations",
                   to_regclass('public.contacts') is not null as "hasContacts"`,
      );
      expect(row).toEqual({ migrations: journal.entries.length, hasContacts: true });
    });

    it("has db:migrate say that no migration was left the next time", async () => {
      const second = await runMain("scripts/migrate.ts", [], { PGLITE_DIR: dir });
      expect(second.output).toContain(`0 migration(s) applied; the embedded database (${dir})`);
    });
  });

  it("keeps its data in PGLITE_DIR for the next opener once the first has closed", async () => {
    const dir = await migratedDir();
    const first = await open(dir);
    await first.db.execute(
      sql`insert into contacts (email, link_precedence) values ('kept@x.io', 'primary')`,
    );
    await first.close();
    const second = await open(dir);
    cleanup.push(() => second.close());
    const { rows } = (await second.db.execute(sql`select email from contacts`)) as unknown as {
      rows: { email: string }[];
    };
    expect(rows).toEqual([{ email: "kept@x.io" }]);
  });

  it("refuses a second opener of the same folder with a clear error instead of corrupting it", async () => {
    const dir = await migratedDir();
    const holder: Connection = await open(dir);
    cleanup.push(() => holder.close());
    const attempt = open(dir);
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(attempt).rejects.toThrow(/in use by another process/);
  });
});

describe("on Vercel without a database URL", () => {
  afterEach(async () => {
    await closeDatabase();
    delete process.env.VERCEL;
    delete process.env.ALLOW_PUBLIC_ACCESS;
  });

  it("answers 503 and logs why, never falling back to the embedded database", async () => {
    delete process.env.DATABASE_URL;
    process.env.VERCEL = "1";
    // Opened on purpose: the subject is the database, and a deployment needs access control.
    process.env.ALLOW_PUBLIC_ACCESS = "true";
    process.env.PGLITE_DIR = "memory://";
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await postIdentify({ email: "doc@x.io" });
      expect(response.status).toBe(503);
      const lines = logged.mock.calls.map((call) => String(call[0]));
      expect(lines.some((line) => line.includes("DATABASE_URL is not set"))).toBe(true);
    } finally {
      logged.mockRestore();
    }
  });
});
