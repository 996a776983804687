/**
 * `npm run forget`: the command line around lib/forget.ts, run as its own process against a
 * database of this file's own on the local PostgreSQL server. The script opens the embedded
 * database the same way when DATABASE_URL is unset (test/embedded-database.test.ts), but
 * that costs a second per run, and what is tested here is the command line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { identify } from "../lib/identify.js";
import { allContacts } from "./support/contacts.js";
import { postgresAvailable, postgresBackend, resetContacts } from "./support/databases.js";
import { runScript } from "./support/scripts.js";

const DOC = { email: "doc.brown@erase-me.test", phone: "5550119551" };
const MARTY = "marty.mcfly@erase-me.test";

describe.skipIf(!postgresAvailable())("npm run forget", () => {
  const backend = postgresBackend();
  let connection: Connection;
  const ids: number[] = [];

  /** Runs the script with stdin not a terminal; resolves with its exit code and output. */
  const forget = (...args: string[]) =>
    runScript("scripts/forget.ts", args, { DATABASE_URL: backend.url() ?? "" });

  const contactIds = async () => (await allContacts(connection.db)).map((c) => c.id);

  // One database for the file, emptied and planted again before each test.
  beforeAll(async () => {
    connection = await backend.open();
  });
  beforeEach(async () => {
    await resetContacts(connection);
    const send = (email: string, phoneNumber: string) =>
      identify(connection.db, { email, phoneNumber }, { lockTimeoutMs: 5000, requestId: "r" });
    ids.length = 0;
    ids.push((await send(DOC.email, DOC.phone)).customer.primaryContactId);
    ids.push(...(await send(MARTY, DOC.phone)).customer.secondaryContactIds);
  });
  afterAll(() => backend.dispose());

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
