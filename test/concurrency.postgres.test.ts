/**
 * Concurrent requests on the local PostgreSQL server, with real parallel connections. After
 * every test the invariants (canonical form, lib/db/invariants.ts) are checked in SQL: the
 * lock-free lookup is only as fast as the data is canonical.
 */
import { asc, sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { sqlState } from "../lib/db/errors.js";
import { checkInvariants } from "../lib/db/invariants.js";
import { identityEvents } from "../lib/db/schema.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../lib/db/sql-contract.js";
import { identify } from "../lib/identify.js";
import { allContacts } from "./support/contacts.js";
import { connect, postgresBackend, resetContacts } from "./support/databases.js";
import { databaseError, failureOf } from "./support/errors.js";

const backend = postgresBackend({ poolMax: 24 });
const CONSISTENT = {
  primaryNotOldest: 0,
  secondaryNotOnLivePrimary: 0,
  identifierInTwoCustomers: 0,
  duplicateRows: 0,
};

/** Fisher-Yates: a fresh random order for every run. */
function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

describe.skipIf(!backend.available)("concurrent requests on postgres", () => {
  let connection: Connection;
  const run = (email: string | null, phoneNumber: string | null) =>
    identify(
      connection.db,
      { email, phoneNumber },
      { lockTimeoutMs: 10_000, requestId: "concurrency-test" },
    );

  beforeAll(async () => {
    connection = await backend.open();
  });
  afterAll(() => backend.dispose());
  beforeEach(() => resetContacts(connection));
  afterEach(async () => {
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });

  it("gives up after lockTimeoutMs behind a table lock on a new connection's first request", async () => {
    // Nothing before lock_timeout is set may open contacts: on a connection that has not yet
    // compiled the functions, a variable of the table's row type would, and wait forever.
    const blocker = await connect({ DATABASE_URL: backend.url() });
    const fresh = await connect({ DATABASE_URL: backend.url(), DB_POOL_MAX: "1" });
    try {
      const failure = await blocker.db.transaction(async (tx) => {
        await tx.execute(sql`lock table contacts in access exclusive mode`);
        return failureOf(
          identify(
            fresh.db,
            { email: "doc@hillvalley.edu", phoneNumber: "1955" },
            { lockTimeoutMs: 200, requestId: "concurrency-test" },
          ),
        );
      });
      expect(databaseError(failure)?.code).toBe("55P03");
    } finally {
      await fresh.close();
      await blocker.close();
    }
  });

  it("turns 25 parallel identical new requests into one row", async () => {
    const results = await Promise.all(
      Array.from({ length: 25 }, () => run("marty@hillvalley.edu", "1985")),
    );
    expect(await allContacts(connection.db)).toHaveLength(1);
    expect(results.filter((result) => result.outcome === "created")).toHaveLength(1);
    expect(new Set(results.map((result) => result.customer.primaryContactId)).size).toBe(1);
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });

  it("adds exactly the distinct new emails when 30 parallel requests share one phone", async () => {
    const primary = await run("first@x.io", "555");
    const distinct = Array.from({ length: 20 }, (_, i) => `guest${i}@x.io`);
    const requests = shuffled([...distinct, ...distinct.slice(0, 10)]);
    expect(requests).toHaveLength(30);
    await Promise.all(requests.map((email) => run(email, "555")));

    const rows = await allContacts(connection.db);
    expect(rows).toHaveLength(1 + distinct.length);
    expect(rows.filter((row) => row.linkPrecedence === "primary").map((row) => row.id)).toEqual([
      primary.customer.primaryContactId,
    ]);
    expect(new Set(rows.map((row) => row.email))).toEqual(new Set(["first@x.io", ...distinct]));
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });

  it("joins 8 customers cross-linked in random order under the oldest primary", async () => {
    const customers = [];
    for (let i = 0; i < 8; i++) customers.push(await run(`c${i}@x.io`, `${1000 + i}`));
    const oldest = customers[0]?.customer.primaryContactId;

    // Every pair (i, j) linked by i's email and j's phone: many merges race on each primary.
    const links: [string, string][] = [];
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) if (i !== j) links.push([`c${i}@x.io`, `${1000 + j}`]);
    }
    const results = await Promise.all(shuffled(links).map(([email, phone]) => run(email, phone)));

    const rows = await allContacts(connection.db);
    expect(rows).toHaveLength(8);
    expect(rows.filter((row) => row.linkPrecedence === "primary").map((row) => row.id)).toEqual([
      oldest,
    ]);
    expect(rows.every((row) => row.id === oldest || row.linkedId === oldest)).toBe(true);
    // Responses that raced ahead of the last merge saw part of the customer, but each one
    // was consistent: its primary older than all of its secondaries.
    for (const { customer } of results) {
      expect(customer.secondaryContactIds.every((id) => id > customer.primaryContactId)).toBe(true);
    }
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });

  it("records one creation per contact, and each contact's last event names its primary", async () => {
    for (let i = 0; i < 6; i++) await run(`c${i}@x.io`, `${1000 + i}`);
    const links = shuffled([0, 1, 2, 3, 4].map((i) => [`c${i}@x.io`, `${1001 + i}`] as const));
    await Promise.all([
      ...links.map(([email, phone]) => run(email, phone)),
      ...Array.from({ length: 10 }, (_, i) => run(`new${i}@x.io`, `${1000 + (i % 6)}`)),
    ]);

    const rows = await allContacts(connection.db);
    const events = await connection.db
      .select()
      .from(identityEvents)
      .orderBy(asc(identityEvents.id));
    const created = events.filter((e) => e.kind.startsWith("created_")).map((e) => e.contactId);
    expect(created.sort((a, b) => a - b)).toEqual(rows.map((row) => row.id));
    for (const row of rows) {
      const last = events.filter((e) => e.contactId === row.id).at(-1);
      expect(last?.newPrimaryId).toBe(row.linkedId ?? row.id);
    }
  });

  it("never lets concurrent requests grow a customer past the cap", async () => {
    const guardrails = { maxContacts: 5 };
    await identify(
      connection.db,
      { email: "first@x.io", phoneNumber: "42" },
      { lockTimeoutMs: 10_000, requestId: "cap", guardrails },
    );
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        identify(
          connection.db,
          { email: `guest${i}@x.io`, phoneNumber: "42" },
          { lockTimeoutMs: 10_000, requestId: "cap", guardrails },
        ),
      ),
    );
    expect(await allContacts(connection.db)).toHaveLength(5);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(4);
    expect(
      results.filter(
        (r) => r.status === "rejected" && sqlState(r.reason) === SQLSTATE_CUSTOMER_TOO_LARGE,
      ),
    ).toHaveLength(16);
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });

  it("keeps every invariant when merges reach one customer through different identifiers", async () => {
    // A hub customer with many identifiers; each spoke joins it through a different one.
    const hub = await run("hub@x.io", "0");
    for (let i = 1; i <= 12; i++) await run(`hub${i}@x.io`, "0");
    const spokes = [];
    for (let i = 1; i <= 12; i++) spokes.push(await run(`spoke${i}@x.io`, `${i}`));
    await Promise.all(
      shuffled(spokes.map((_, k) => k + 1)).map((i) => run(`hub${i}@x.io`, `${i}`)),
    );

    const primaries = await connection.db.execute(
      sql`select count(*)::int as n from contacts where link_precedence = 'primary'`,
    );
    expect((primaries as unknown as { rows: { n: number }[] }).rows[0]?.n).toBe(1);
    expect((await run("spoke7@x.io", null)).customer.primaryContactId).toBe(
      hub.customer.primaryContactId,
    );
    expect(await checkInvariants(connection.db)).toEqual(CONSISTENT);
  });
});
