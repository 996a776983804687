/**
 * Undoing an over-merge (lib/relink.ts, drizzle/functions/identify_relink.sql): customers
 * merged through a value listed as junk since are split, customers sharing a value taken off
 * the list are joined, nothing is written when nothing needs to change, soft-deleted
 * contacts keep bridging, the change feed and explain tell each move, a customer far over the
 * cap comes apart, and the deploy build says what is left to relink. On a PostgreSQL
 * database of this file's own, where production recorded its guardrails as a deploy build
 * does; the command line runs as its own process for what only a process shows (exit status,
 * what it prints).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseChangesQuery, readChanges } from "../lib/changes.js";
import type { Connection } from "../lib/db/client.js";
import { identifyDatabase, recordDeployment } from "../lib/db/deployment.js";
import { sqlState } from "../lib/db/errors.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../lib/db/sql-contract.js";
import { explainCustomer, formatExplanation } from "../lib/explain.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import {
  changedCustomers,
  formatRelinkResult,
  guardrailChangeNotice,
  newRelinkRequestId,
  relinkAll,
  relinkCustomer,
} from "../lib/relink.js";
import { allContacts } from "./support/contacts.js";
import { postgresAvailable, postgresBackend, resetContacts } from "./support/databases.js";
import { failureOf } from "./support/errors.js";
import { sequentialScansOf } from "./support/scans.js";
import { runMain } from "./support/scripts.js";

const JUNK = "test@test.com";
const JUNK_LISTED: Guardrails = { junkEmails: [JUNK], maxContacts: 1000 };
const NO_JUNK: Guardrails = { maxContacts: 1000 };
const C_EMAIL = "clara.clayton@hillvalley.edu";
const PHONE_1 = "5550100001";
const PHONE_2 = "5550100002";

describe.skipIf(!postgresAvailable())("relink", () => {
  const backend = postgresBackend();
  let connection: Connection;

  const send = (email: string | null, phoneNumber: string | null, guardrails = NO_JUNK) =>
    identify(
      connection.db,
      { email, phoneNumber },
      { lockTimeoutMs: 5000, requestId: "checkout", guardrails },
    );
  /** Records `guardrails` as production's, as its deploy build does. */
  const deploy = async (guardrails: Guardrails) =>
    recordDeployment(
      connection.db,
      "production",
      await identifyDatabase(connection.db),
      guardrails,
    );
  const relink = (
    selector: Parameters<typeof relinkCustomer>[1],
    guardrails = JUNK_LISTED,
    dryRun = false,
  ) =>
    relinkCustomer(connection.db, selector, {
      requestId: newRelinkRequestId(),
      guardrails,
      dryRun,
    });
  const relinkScript = (...args: string[]) =>
    runMain("scripts/relink.ts", args, { DATABASE_URL: backend.url() ?? "" });
  /** Each live contact's primary. */
  const primaries = async () =>
    new Map(
      (await allContacts(connection.db))
        .filter((c) => !c.deletedAt)
        .map((c) => [c.id, c.linkedId ?? c.id]),
    );
  const eventCount = async () =>
    (
      await queryRows<{ n: number }>(
        connection.db,
        sql`select count(*)::int as n from identity_events`,
      )
    )[0]?.n;

  beforeAll(async () => {
    connection = await backend.open();
  });
  beforeEach(async () => {
    await resetContacts(connection);
    await connection.db.execute(sql`delete from deployment`);
  });
  afterAll(() => backend.dispose());

  /**
   * The three contacts, merged before test@test.com was junk: A (junk, phone 1),
   * B (junk, phone 2) joined A through the junk email, C (own email, phone 1) through phone 1.
   */
  async function strangersMergedThroughJunk() {
    const a = (await send(JUNK, PHONE_1)).customer.primaryContactId;
    const [b] = (await send(JUNK, PHONE_2)).customer.secondaryContactIds;
    const c = (await send(C_EMAIL, PHONE_1)).customer.secondaryContactIds.at(-1);
    if (b === undefined || c === undefined) throw new Error("the three contacts were not merged");
    return { a, b, c };
  }

  it("splits A, B and C as production's junk list says, with only DATABASE_URL set", async () => {
    const { a, b, c } = await strangersMergedThroughJunk();
    await deploy(JUNK_LISTED);
    const { code, output } = await relinkScript("--email", C_EMAIL, "--yes");
    expect(code).toBe(0);
    expect(output).toContain("Relinked 1 customer");
    expect(Object.fromEntries(await primaries())).toEqual({ [a]: a, [b]: b, [c]: a });
    for (const value of [JUNK, C_EMAIL, PHONE_1, PHONE_2]) expect(output).not.toContain(value);
  });

  it("shows B relinked to itself in the change feed", async () => {
    const { b } = await strangersMergedThroughJunk();
    await relink({ email: C_EMAIL });
    const page = await readChanges(
      connection.db,
      parseChangesQuery(new URLSearchParams("limit=1000")),
    );
    expect(page.changes.filter((change) => change.contactId === b).at(-1)).toMatchObject({
      kind: "relinked",
      primaryContactId: b,
    });
  });

  it("answers a request for phone 2 with B's own customer afterwards", async () => {
    const { a, b } = await strangersMergedThroughJunk();
    await relink({ email: C_EMAIL });
    const { customer } = await send(null, PHONE_2, JUNK_LISTED);
    expect(customer.primaryContactId).toBe(b);
    expect(customer.secondaryContactIds).not.toContain(a);
  });

  it("tells in explain that B was split from A's customer", async () => {
    const { a, b } = await strangersMergedThroughJunk();
    await relink({ email: C_EMAIL });
    const explanation = await explainCustomer(connection.db, { id: b }, JUNK_LISTED);
    if (!explanation) throw new Error("B is not found");
    expect(formatExplanation(explanation)).toContain(
      `contact ${b} was split from customer ${a} by a relink`,
    );
  });

  it("writes nothing and says so when the customer needs no change", async () => {
    await strangersMergedThroughJunk();
    await relink({ email: C_EMAIL });
    const events = await eventCount();
    const before = await allContacts(connection.db);
    const again = await relink({ email: C_EMAIL });
    expect(changedCustomers(again)).toEqual([]);
    expect(await allContacts(connection.db)).toEqual(before);
    expect(await eventCount()).toBe(events);
  });

  it("says that nothing needed relinking", async () => {
    await strangersMergedThroughJunk();
    expect(formatRelinkResult(await relink({ email: C_EMAIL }, NO_JUNK))).toMatch(
      /^Nothing to relink: customer \d+ \(3 contacts\) is already as the guardrails say\. Nothing was written\.$/,
    );
  });

  it("changes nothing in a dry run and prints no email or phone number", async () => {
    await strangersMergedThroughJunk();
    await deploy(JUNK_LISTED);
    const before = await allContacts(connection.db);
    const { code, output } = await relinkScript("--email", C_EMAIL, "--dry-run");
    expect(code).toBe(0);
    expect(output).toContain("Would relink 1 customer");
    expect(output).toContain("Dry run: nothing was written.");
    for (const value of [JUNK, C_EMAIL, PHONE_1, PHONE_2]) expect(output).not.toContain(value);
    expect(await allContacts(connection.db)).toEqual(before);
  });

  it("marks a customer a request alone joined, which a relink splits, and not one joined by junk", async () => {
    const george = (await send("george@hv.edu", "5550919191")).customer.primaryContactId;
    const biff = (await send("biff@hv.edu", "5550717171")).customer.primaryContactId;
    await send("george@hv.edu", "5550717171");
    const { a, b } = await strangersMergedThroughJunk();
    const byRequest = formatRelinkResult(await relink({ id: biff }, NO_JUNK, true));
    expect(byRequest).toContain(
      `customer ${biff}: 1 contact: ${biff}; moved 1 contact: ${biff} (shares no value with the others`,
    );
    expect(byRequest).toContain(`customer ${george}: 1 contact: ${george} (shares no value`);
    const byJunk = formatRelinkResult(await relink({ id: a }, JUNK_LISTED, true));
    expect(byJunk).toContain(`customer ${b}: 1 contact: ${b}; moved 1 contact: ${b}`);
    expect(byJunk).not.toContain("shares no value");
  });

  it("joins customers that share a value taken off the junk list", async () => {
    const a = (await send(JUNK, PHONE_1, JUNK_LISTED)).customer.primaryContactId;
    const b = (await send(JUNK, PHONE_2, JUNK_LISTED)).customer.primaryContactId;
    expect(b).not.toBe(a);
    const result = await relink({ phoneNumber: PHONE_2 }, NO_JUNK);
    expect(changedCustomers(result)).toEqual([a, b]);
    expect(Object.fromEntries(await primaries())).toEqual({ [a]: a, [b]: a });
  });

  it("tells in explain that a customer sharing a value taken off the list joined another", async () => {
    const a = (await send(JUNK, PHONE_1, JUNK_LISTED)).customer.primaryContactId;
    const b = (await send(JUNK, PHONE_2, JUNK_LISTED)).customer.primaryContactId;
    await relink({ id: b }, NO_JUNK);
    const explanation = await explainCustomer(connection.db, { id: b }, NO_JUNK);
    if (!explanation) throw new Error("B is not found");
    expect(formatExplanation(explanation)).toContain(
      `contact ${b} joined customer ${a} with customer ${b} by a relink`,
    );
  });

  it("keeps a soft-deleted contact bridging its customer, on this relink and the next", async () => {
    // X joined A through the junk email; B bridged A (phone 1) and C (email b); then B was deleted.
    const x = (await send(JUNK, "5550100009")).customer.primaryContactId;
    await send(JUNK, PHONE_1);
    await send("b@hillvalley.edu", PHONE_1);
    await send("b@hillvalley.edu", "5550100003");
    const [a, b, c] = [...(await primaries()).keys()].filter((id) => id !== x);
    await connection.db.execute(sql`update contacts set deleted_at = now() where id = ${b}`);
    await relink({ id: c as number });
    expect(Object.fromEntries(await primaries())).toEqual({
      [x]: x,
      [a as number]: a,
      [c as number]: a,
    });
    expect(changedCustomers(await relink({ id: c as number }))).toEqual([]);
  });

  it("splits a 1,200-contact customer joined only by the junk email into 1,200, which then answer", async () => {
    await connection.db.execute(sql`
      insert into contacts (email, phone_number, link_precedence, created_at)
      values (${JUNK}, '5550200000', 'primary', now() - interval '1 day')`);
    await connection.db.execute(sql`
      insert into contacts (email, phone_number, link_precedence, linked_id, created_at)
      select ${JUNK}, (5550200000 + n)::text, 'secondary', 1, now() - interval '1 day' + n * interval '1 ms'
        from generate_series(1, 1199) n`);
    const lookup = () => send(null, "5550200777", JUNK_LISTED);
    expect(sqlState(await failureOf(lookup()))).toBe(SQLSTATE_CUSTOMER_TOO_LARGE);
    const progress: number[] = [];
    const done = await relinkAll(
      connection.db,
      { requestId: newRelinkRequestId(), guardrails: JUNK_LISTED },
      (p) => progress.push(p.throughId),
    );
    expect(done.customersChanged).toBe(1);
    expect(done.contactsMoved).toBe(1199);
    expect(progress).toEqual([1000, 1200]);
    expect(new Set((await primaries()).values()).size).toBe(1200);
    expect((await lookup()).customer.secondaryContactIds).toEqual([]);
    expect(violationCount(await checkInvariants(connection.db, JUNK_LISTED))).toBe(0);
  });

  it("reads contacts through indexes only, never a sequential scan", async () => {
    const { c } = await strangersMergedThroughJunk();
    await connection.db.execute(sql`update contacts set deleted_at = now() where id = ${c}`);
    const scans = await sequentialScansOf(connection.db, async (tx) => {
      await relinkCustomer(
        tx,
        { phoneNumber: PHONE_2 },
        { requestId: newRelinkRequestId(), guardrails: JUNK_LISTED },
      );
      await tx.execute(sql`select identify_relink_chunk(0, 1000)`);
    });
    expect(scans).toBe(0);
  });

  it("exits 2 quoting nothing for an unknown option, no selector and a value nobody has", async () => {
    await strangersMergedThroughJunk();
    const before = await allContacts(connection.db);
    const unknown = await relinkScript("--emial", C_EMAIL);
    const none = await relinkScript("--yes");
    const nobody = await relinkScript("--email", "nobody.here@hillvalley.edu", "--yes");
    expect([unknown.code, none.code, nobody.code]).toEqual([2, 2, 2]);
    expect(unknown.output).toContain("Unreadable arguments");
    expect(none.output).toContain("Usage: npm run relink");
    expect(nobody.output).toContain("No live contact matches");
    for (const run of [unknown, nobody]) {
      expect(run.output).not.toContain("hillvalley.edu");
    }
    expect(await allContacts(connection.db)).toEqual(before);
  });

  it("prints its usage with --help and exits 0", async () => {
    const { code, stdout } = await relinkScript("--help");
    expect(code).toBe(0);
    expect(stdout).toContain("Usage: npm run relink -- --email <email>");
  });

  it("tells the deploy build how many customers a change of junk list leaves to relink", async () => {
    await strangersMergedThroughJunk();
    await deploy(NO_JUNK);
    const notice = await guardrailChangeNotice(connection.db, JUNK_LISTED);
    expect(notice).toContain("relink would change 1 customer ");
    expect(notice).toContain("npm run relink -- --all");
  });

  it("has the deploy build log what is left to relink when its junk list changed", async () => {
    const build = (env: Record<string, string>) =>
      runMain("scripts/migrate.ts", ["--deploy"], {
        VERCEL_ENV: "production",
        API_KEYS: "key-of-a-production-deployment",
        DATABASE_URL: backend.url() ?? "",
        ...env,
      });
    expect((await build({})).code).toBe(0);
    await strangersMergedThroughJunk();
    const before = await allContacts(connection.db);
    const { code, stdout } = await build({ JUNK_EMAILS: JUNK });
    expect(code).toBe(0);
    expect(stdout).toContain("relink would change 1 customer ");
    expect(await allContacts(connection.db)).toEqual(before);
  });

  it("tells the deploy build nothing when the junk lists did not change", async () => {
    await strangersMergedThroughJunk();
    await deploy(JUNK_LISTED);
    expect(
      await guardrailChangeNotice(connection.db, { ...JUNK_LISTED, maxContacts: 500 }),
    ).toBeUndefined();
  });
});
