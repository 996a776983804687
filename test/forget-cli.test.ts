/** `npm run forget`: the command line around lib/forget.ts, on an embedded database on disk. */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readConfig } from "../lib/config.js";
import { type Connection, openConnection } from "../lib/db/client.js";
import { identify } from "../lib/identify.js";
import { allContacts } from "./support/contacts.js";
import { resetContacts } from "./support/databases.js";

const DOC = { email: "doc.brown@erase-me.test", phone: "5550119551" };
const MARTY = "marty.mcfly@erase-me.test";

describe("npm run forget", () => {
  let dir: string;
  const ids: number[] = [];

  /** Runs the script with stdin not a terminal; resolves with its exit code and output. */
  async function forget(...args: string[]) {
    try {
      const { stdout, stderr } = await promisify(execFile)(
        "npx",
        ["tsx", "scripts/forget.ts", ...args],
        { env: { ...process.env, DATABASE_URL: "", PGLITE_DIR: join(dir, "data") } },
      );
      return { code: 0, output: stdout + stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, output: failed.stdout + failed.stderr };
    }
  }

  /** Runs `work` on the script's database while the script is not running. */
  async function withDatabase<T>(work: (connection: Connection) => Promise<T>): Promise<T> {
    const connection = await openConnection(readConfig({ PGLITE_DIR: join(dir, "data") }));
    try {
      return await work(connection);
    } finally {
      await connection.close();
    }
  }
  const contactIds = () => withDatabase(async ({ db }) => (await allContacts(db)).map((c) => c.id));

  // One database for the file, emptied and planted again before each test: creating and
  // migrating a database on disk per test would take longer than the tests.
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "identify-forget-"));
  });
  beforeEach(() =>
    withDatabase(async (connection) => {
      await resetContacts(connection);
      const send = (email: string, phoneNumber: string) =>
        identify(connection.db, { email, phoneNumber }, { lockTimeoutMs: 5000, requestId: "r" });
      ids.length = 0;
      ids.push((await send(DOC.email, DOC.phone)).customer.primaryContactId);
      ids.push(...(await send(MARTY, DOC.phone)).customer.secondaryContactIds);
    }),
  );
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("erases with --yes and prints the ids and counts, never the values", async () => {
    const { code, output } = await forget("--email", ` ${DOC.email.toUpperCase()} `, "--yes");
    expect(code).toBe(0);
    expect(output).toContain(`Erased 2 contact(s): ${ids.join(", ")}`);
    expect(output).toContain("request forget-");
    for (const value of [DOC.email, DOC.email.toUpperCase(), DOC.phone, MARTY])
      expect(output).not.toContain(value);
    expect(await contactIds()).toEqual([]);
  });

  it("refuses to erase without --yes when stdin is not a terminal", async () => {
    const { code, output } = await forget("--phone", DOC.phone);
    expect(code).toBe(1);
    expect(output).toContain("Pass --yes");
    expect(output).not.toContain(DOC.phone);
    expect(await contactIds()).toEqual(ids);
  });

  it("shows what a dry run would erase and erases nothing", async () => {
    const { code, output } = await forget("--id", String(ids[1]), "--dry-run");
    expect(code).toBe(0);
    expect(output).toContain(`Would erase 2 contact(s): ${ids.join(", ")}`);
    expect(output).toContain("Dry run: nothing erased.");
    expect(await contactIds()).toEqual(ids);
  });

  it("succeeds, saying so, when there is nothing to erase", async () => {
    const { code, output } = await forget("--email", "nobody@erase-me.test", "--yes");
    expect(code).toBe(0);
    expect(output).toContain("Nothing to erase");
    expect(output).not.toContain("nobody@erase-me.test");
  });

  it("never repeats a stray argument, which may be the value to erase", async () => {
    const { code, output } = await forget(DOC.email, "--yes");
    expect(code).toBe(1);
    expect(output).toContain("Usage: npm run forget");
    expect(output).not.toContain(DOC.email);
  });
});
