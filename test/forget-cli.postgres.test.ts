/**
 * `npm run forget`: the command line around lib/forget.ts, its main called in-process against a
 * database of this file's own on the local PostgreSQL server. The script opens the embedded
 * database the same way when DATABASE_URL is unset (test/embedded-database.test.ts), but
 * that costs a second per run, and what is tested here is the command line.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { erasures } from "../lib/db/schema.js";
import { identify } from "../lib/identify.js";
import { allContacts } from "./support/contacts.js";
import { postgresAvailable, postgresBackend, resetContacts } from "./support/databases.js";
import { runMain } from "./support/scripts.js";

const DOC = { email: "doc.brown@erase-me.test", phone: "5550119551" };
const MARTY = "marty.mcfly@erase-me.test";
/** The smallest cap the configuration allows. */
const CAP_OF_TWO = { MAX_CONTACTS_PER_CUSTOMER: "2" };
/** A server nothing listens on: a script that connects fails. */
const UNREACHABLE_URL = "postgres://postgres@127.0.0.1:1/nowhere";

describe.skipIf(!postgresAvailable())("npm run forget", () => {
  const backend = postgresBackend();
  let connection: Connection;
  const ids: number[] = [];

  /** Runs the script with stdin not a terminal; resolves with its exit code and output. */
  const forget = (...args: string[]) => forgetWith({}, ...args);
  /** The same, with more environment variables (guardrail settings). */
  const forgetWith = (env: Record<string, string>, ...args: string[]) =>
    runMain("scripts/forget.ts", args, { DATABASE_URL: backend.url() ?? "", ...env });

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

  /** Gives Doc's customer a third contact, Jennifer through Doc's phone. */
  const addThirdContact = () =>
    identify(
      connection.db,
      { email: "jennifer.parker@erase-me.test", phoneNumber: DOC.phone },
      { lockTimeoutMs: 5000, requestId: "r" },
    );

  it("erases with --yes and prints the ids and counts, never the values", async () => {
    const { code, output } = await forget("--email", ` ${DOC.email.toUpperCase()} `, "--yes");
    expect(code).toBe(0);
    expect(output).toContain(`Erased 2 contact(s): ${ids.join(", ")}`);
    expect(output).toContain("request forget-");
    for (const value of [DOC.email, DOC.email.toUpperCase(), DOC.phone, MARTY])
      expect(output).not.toContain(value);
    expect(await contactIds()).toEqual([]);
  });

  it("shows what it would erase before erasing, also with --yes", async () => {
    const { code, stdout } = await forget("--email", DOC.email, "--yes");
    expect(code).toBe(0);
    const preview = stdout.indexOf(`Would erase 2 contact(s): ${ids.join(", ")}`);
    expect(preview).toBeGreaterThanOrEqual(0);
    expect(stdout.indexOf(`Erased 2 contact(s): ${ids.join(", ")}`)).toBeGreaterThan(preview);
  });

  it("records the ticket given as --request-id on the erasure record", async () => {
    const { code, output } = await forget(
      "--id",
      String(ids[0]),
      "--yes",
      "--request-id",
      "PRIV-1234",
    );
    expect(code).toBe(0);
    expect(output).toContain("request PRIV-1234.");
    const records = await connection.db.select().from(erasures);
    expect(records.map((r) => r.requestId)).toEqual(["PRIV-1234"]);
  });

  it("refuses an email as --request-id, explaining the rule without repeating it, and erases nothing", async () => {
    const { code, output } = await forget("--phone", DOC.phone, "--yes", "--request-id", MARTY);
    expect(code).toBe(1);
    expect(output).toContain(
      "--request-id: The request id must be a ticket reference such as PRIV-1234",
    );
    expect(output).not.toContain(MARTY);
    expect(output).not.toContain(DOC.phone);
    expect(await contactIds()).toEqual(ids);
    expect(await connection.db.select().from(erasures)).toEqual([]);
  });

  it("refuses a bad --request-id before connecting to the database", async () => {
    const { code, output } = await runMain(
      "scripts/forget.ts",
      ["--email", DOC.email, "--yes", "--request-id", "Doc Brown"],
      { DATABASE_URL: UNREACHABLE_URL },
    );
    expect(code).toBe(1);
    expect(output).toContain("a ticket reference such as PRIV-1234");
    expect(output).not.toContain("Doc Brown");
    expect(output).not.toContain("ECONNREFUSED");
  });

  it("refuses a customer over the cap, naming the cap and --over-cap, and erases nothing", async () => {
    await addThirdContact();
    const { code, output } = await forgetWith(CAP_OF_TWO, "--email", DOC.email, "--yes");
    expect(code).toBe(1);
    expect(output).toContain("more than 2 contacts");
    expect(output).toContain("--over-cap");
    expect(output).not.toContain(DOC.email);
    expect(await contactIds()).toHaveLength(3);
  });

  it("erases a customer over the cap with --over-cap", async () => {
    await addThirdContact();
    const { code, output } = await forgetWith(
      CAP_OF_TWO,
      "--email",
      DOC.email,
      "--yes",
      "--over-cap",
    );
    expect(code).toBe(0);
    expect(output).toContain("Erased 3 contact(s)");
    expect(await contactIds()).toEqual([]);
  });

  it("erases a customer of exactly the cap's contacts without --over-cap", async () => {
    const { code, output } = await forgetWith(CAP_OF_TWO, "--email", DOC.email, "--yes");
    expect(code).toBe(0);
    expect(output).toContain(`Erased 2 contact(s): ${ids.join(", ")}`);
    expect(await contactIds()).toEqual([]);
  });

  it("never prints the identifier when the database refuses it, though the driver's error quotes it", async () => {
    const { code, output } = await forgetWith(
      { JUNK_EMAILS: DOC.email },
      "--email",
      DOC.email,
      "--yes",
    );
    expect(code).toBe(1);
    expect(output).toContain("junk value");
    expect(output).not.toContain(DOC.email);
    expect(output).not.toContain("Failed query");
    expect(await contactIds()).toEqual(ids);
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
