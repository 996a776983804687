/** The embedded database: persisted in its folder, one process at a time, never on Vercel. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readConfig } from "../lib/config.js";
import { type Connection, closeDatabase, openConnection } from "../lib/db/client.js";
import { DatabaseUnavailableError } from "../lib/errors.js";
import { postIdentify } from "./support/http.js";

const open = (dir: string) =>
  openConnection(readConfig({ PGLITE_DIR: dir, PGLITE_LOCK_WAIT_MS: "300" }));

describe("the embedded database", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  async function tempDir() {
    const parent = await mkdtemp(join(tmpdir(), "identify-pglite-"));
    cleanup.push(() => rm(parent, { recursive: true, force: true }));
    return join(parent, "data");
  }

  it("keeps its data in PGLITE_DIR across connections", async () => {
    const dir = await tempDir();
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
    const dir = await tempDir();
    const holder: Connection = await open(dir);
    cleanup.push(() => holder.close());
    const attempt = open(dir);
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    await expect(attempt).rejects.toThrow(/in use by another process/);
  });

  it("opens the folder again once its holder closed", async () => {
    const dir = await tempDir();
    await (await open(dir)).close();
    const again = await open(dir);
    cleanup.push(() => again.close());
    expect(again.driver).toBe("pglite");
  });
});

describe("on Vercel without a database URL", () => {
  afterEach(async () => {
    await closeDatabase();
    delete process.env.VERCEL;
  });

  it("answers 503 and logs why, never falling back to the embedded database", async () => {
    delete process.env.DATABASE_URL;
    process.env.VERCEL = "1";
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
