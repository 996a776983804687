/**
 * The change feed under concurrency, on PostgreSQL, through the handler as a consumer calls
 * it: a consumer pages the feed while 800 requests create and merge customers, then pages to
 * the end, and its mirror must equal the database; an erasure then reaches it. Transactions
 * that commit out of order are staged deterministically with a second connection. Work per
 * page is counted, not timed.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Connection, getConnection } from "../lib/db/client.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import { forgetCustomer } from "../lib/forget.js";
import { importFromLegacy } from "../lib/import.js";
import { Consumer, getChanges, liveContacts, sorted } from "./support/changes.js";
import {
  connect,
  createPostgresDatabase,
  resetContacts,
  servedDatabase,
} from "./support/databases.js";
import { postIdentify } from "./support/http.js";

const database = servedDatabase("postgres");
const KEY = "feed-test-key-0123456789";
const AUTH = { Authorization: `Bearer ${KEY}` };

/** POSTs one request with the key; resolves to its primary contact id. */
async function post(email: string | null, phoneNumber: string | null): Promise<number> {
  const response = await postIdentify({ email, phoneNumber }, { headers: AUTH });
  if (response.status !== 200) {
    throw new Error(`POST /identify answered ${response.status}: ${await response.text()}`);
  }
  return ((await response.json()) as { contact: { primaryContactId: number } }).contact
    .primaryContactId;
}

/** Runs every task, at most `concurrency` at a time. */
async function runBounded(tasks: (() => Promise<unknown>)[], concurrency: number) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]?.();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * 800 requests in 20 groups of 10 customers: each group's customers are created, merged with
 * each other by requests bringing one's email and another's phone, and given new
 * secondaries, all in a random order, so merges race with creations and with each other.
 */
function workload(): (() => Promise<unknown>)[] {
  const tasks: (() => Promise<unknown>)[] = [];
  for (let group = 0; group < 20; group++) {
    const member = (i: number) => `${group}-${i}`;
    for (let i = 0; i < 10; i++) {
      tasks.push(() => post(`c${member(i)}@x.io`, `${group * 100 + i}`));
      tasks.push(() => post(`s${member(i)}@x.io`, `${group * 100 + i}`));
    }
    for (let k = 0; k < 20; k++) {
      const a = Math.floor(Math.random() * 10);
      const b = (a + 1 + Math.floor(Math.random() * 9)) % 10;
      tasks.push(() => post(`c${member(a)}@x.io`, `${group * 100 + b}`));
    }
  }
  for (let i = tasks.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [tasks[i], tasks[j]] = [tasks[j] as () => Promise<unknown>, tasks[i] as () => Promise<unknown>];
  }
  return tasks;
}

describe.skipIf(!database.available)("the change feed under concurrent writes on postgres", () => {
  let other: Connection;

  beforeAll(async () => {
    // Merges wait for each other's customer locks; the served database's 300 ms is for
    // the handler suite's lock-timeout test.
    process.env.DB_LOCK_TIMEOUT_MS = "10000";
    process.env.API_KEYS = KEY;
    other = await connect({ DATABASE_URL: database.url() });
  });
  afterAll(async () => {
    await other?.close();
    delete process.env.API_KEYS;
  });
  beforeEach(async () => resetContacts(await getConnection()));

  it("answers an unauthenticated read with 401 and a bearer challenge", async () => {
    const response = await getChanges();
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="identify"');
    expect((await getChanges({}, { Authorization: "Bearer wrong-key-0123456789" })).status).toBe(
      401,
    );
    expect((await getChanges({}, AUTH)).status).toBe(200);
  });

  it("gives a consumer paging during 800 concurrent requests a mirror equal to the database, then erases a customer from it", async () => {
    const consumer = new Consumer(7, AUTH);
    let writing = true;
    let readWhileWriting = 0;
    const reading = (async () => {
      while (writing) {
        readWhileWriting += await consumer.readPage();
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    try {
      await runBounded(workload(), 24);
    } finally {
      writing = false;
      await reading;
    }
    await consumer.readToEnd();

    const { db } = await getConnection();
    expect(readWhileWriting).toBeGreaterThan(0);
    expect(violationCount(await checkInvariants(db))).toBe(0);
    expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(db)));

    // Never skips, never repeats: what it read page by page, as it went, is change for change
    // what one reader from the beginning reads now.
    const whole = new Consumer(1000, AUTH);
    await whole.readToEnd();
    const trace = (c: Consumer) =>
      c.applied.map(({ contactId, kind, at }) => [contactId, kind, at]);
    expect(trace(consumer)).toEqual(trace(whole));

    const erased = await forgetCustomer(
      db,
      { email: "c7-3@x.io" },
      { requestId: "TICKET-8001", lockTimeoutMs: 10_000 },
    );
    expect(erased.contactIds.length).toBeGreaterThan(1);
    const before = consumer.applied.length;
    await consumer.readToEnd();
    expect(consumer.applied.slice(before)).toEqual(
      erased.contactIds.map((contactId) => expect.objectContaining({ contactId, kind: "erased" })),
    );
    for (const id of erased.contactIds) expect(consumer.mirror.has(id)).toBe(false);
    expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(db)));
  });

  it("holds back a later commit while an earlier transaction is open, then delivers both once, in order", async () => {
    const consumer = new Consumer(1000, AUTH);
    let late = 0;
    await other.db.transaction(async (tx) => {
      // Writes, so it has its transaction id, and stays open past the next request's commit.
      await tx.execute(
        sql`select * from identify_contact('early@x.io', '1', '{"lockTimeoutMs": 5000}'::jsonb)`,
      );
      late = await post("late@x.io", "2");
      await consumer.readToEnd();
      expect(consumer.applied).toEqual([]);
    });
    await consumer.readToEnd();
    const { db } = await getConnection();
    const [early] = await queryRows<{ id: number }>(
      db,
      sql`select id from contacts where email = 'early@x.io'`,
    );
    expect(consumer.applied.map((change) => change.contactId)).toEqual([early?.id, late]);
    expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(db)));
  });

  it("keeps the mirror right when a transaction that took its id first changes a contact last", async () => {
    const p1 = await post("p1@x.io", "1");
    const p2 = await post("p2@x.io", "2");
    const p3 = await post("p3@x.io", "3");
    await other.db.transaction(async (tx) => {
      // Its id is taken first, as an import's is when it creates its staging table ...
      await tx.execute(sql`select txid_current()`);
      // ... then a request with a larger id merges p3 under p2 and commits ...
      expect(await post("p2@x.io", "3")).toBe(p2);
      // ... and only then does it merge p2's customer, p3 with it, under p1.
      await tx.execute(
        sql`select * from identify_contact('p1@x.io', '3', '{"lockTimeoutMs": 5000}'::jsonb)`,
      );
    });
    const consumer = new Consumer(1000, AUTH);
    await consumer.readToEnd();
    // In position order the request's relink of p3 (to p2) comes after the later merge's
    // (to p1), yet the mirror holds where p3 stands: under p1.
    const relinks = consumer.applied.filter((change) => change.kind === "relinked");
    expect(relinks.map((change) => change.contactId).sort()).toEqual([p2, p3, p3].sort());
    expect(relinks.at(-1)?.contactId).toBe(p3);
    expect(consumer.mirror.get(p3)).toBe(p1);
    const { db } = await getConnection();
    expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(db)));
  });

  it("never delivers the changes of a transaction that rolls back, and delivers those after it", async () => {
    const consumer = new Consumer(1000, AUTH);
    let late = 0;
    await other.db
      .transaction(async (tx) => {
        await tx.execute(
          sql`select * from identify_contact('rolled@x.io', '1', '{"lockTimeoutMs": 5000}'::jsonb)`,
        );
        late = await post("late@x.io", "2");
        await consumer.readToEnd();
        tx.rollback();
      })
      .catch(() => undefined);
    await consumer.readToEnd();
    expect(consumer.applied.map((change) => change.contactId)).toEqual([late]);
  });

  it("delivers every committed change at once while transactions of another database begin and end", async () => {
    // Transaction ids are the server's: the snapshot a page is read in lists the transactions
    // of every database, and those of another must never hold this feed back, even when one
    // ends while the page is being read.
    const elsewhere = await createPostgresDatabase({ migrated: false });
    const churners = await Promise.all(
      [1, 2, 3].map(() => connect({ DATABASE_URL: elsewhere.url })),
    );
    let churning = true;
    const churn = churners.map(async ({ db }) => {
      while (churning) {
        await db.transaction(async (tx) => {
          await tx.execute(sql`select txid_current()`);
          await tx.execute(sql`select pg_sleep(0.0005)`);
        });
      }
    });
    const consumer = new Consumer(1000, AUTH);
    const held: number[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        await post(`churn${i}@x.io`, null);
        if ((await consumer.readPage()) !== 1) held.push(i);
      }
    } finally {
      churning = false;
      await Promise.all(churn);
      await Promise.all(churners.map((churner) => churner.close()));
      await elsewhere.drop();
    }
    expect(held).toEqual([]);
  });

  it("mirrors an import exactly: older legacy customers take over live ones, deleted legacy rows stay out", async () => {
    const live = await post("now@x.io", "111");
    await post("other@x.io", "222");
    const consumer = new Consumer(3, AUTH);
    await consumer.readToEnd();

    const source = await createPostgresDatabase({ migrated: false });
    const legacy = await connect({ DATABASE_URL: source.url });
    try {
      await legacy.db.execute(sql`create table Contact (
        id serial primary key, phoneNumber varchar, email varchar, linkedId int,
        linkPrecedence varchar, createdAt timestamp not null default now(),
        updatedAt timestamp not null default now(), deletedAt timestamp)`);
      // An older customer holding the live contact's phone, as a chain 1003 -> 1002 -> 1001;
      // a deleted row on the same phone; two primaries split over one email.
      await legacy.db.execute(sql`insert into Contact
        (id, phoneNumber, email, linkedId, linkPrecedence, createdAt, deletedAt) values
        (1001, '111', 'old@x.io', null, 'primary', '2020-01-01', null),
        (1002, '333', 'old@x.io', 1001, 'secondary', '2020-01-02', null),
        (1003, '333', 'older@x.io', 1002, 'secondary', '2020-01-03', null),
        (1004, '111', 'gone@x.io', null, 'primary', '2020-01-04', '2021-01-01'),
        (1005, '555', 'split@x.io', null, 'primary', '2020-02-02', null),
        (1006, '666', 'split@x.io', null, 'primary', '2020-02-01', null)`);
      await importFromLegacy(await getConnection().then((c) => c.db), legacy.db, {
        requestId: "import:feed-test",
      });
    } finally {
      await legacy.close();
      await source.drop();
    }

    await consumer.readToEnd();
    const { db } = await getConnection();
    expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(db)));
    expect(consumer.mirror.get(live)).toBe(1001);
    expect(consumer.mirror.has(1004)).toBe(false);
    expect(consumer.applied).toContainEqual(
      expect.objectContaining({ contactId: 1004, primaryContactId: null, kind: "deleted" }),
    );
    expect(consumer.applied).toContainEqual(
      expect.objectContaining({ contactId: live, primaryContactId: 1001, kind: "relinked" }),
    );
  });

  it("reads a page from the middle of 5,000 analyzed events with one index probe per change, no table scan", async () => {
    const { db } = await getConnection();
    await db.execute(sql`
      with inserted as (
        insert into contacts (email, link_precedence)
        select 'bulk' || n || '@x.io', 'primary' from generate_series(1, 5000) n returning id)
      insert into identity_events (request_id, kind, contact_id, new_primary_id)
      select 'bulk', 'created_primary', id, id from inserted`);
    await forgetCustomer(db, { email: "bulk17@x.io" }, { requestId: "TICKET-8002" });
    // With statistics, a join to contacts was planned as a merge over its whole primary key.
    await db.execute(sql`analyze contacts, identity_events, erasures`);
    const [middle] = await queryRows<{ transaction_id: string; id: string }>(
      db,
      sql`select transaction_id, id from identity_events order by transaction_id, id offset 2500 limit 1`,
    );
    const counters = sql`select relname, seq_scan::int as seq_scans, idx_tup_fetch::int as fetched
      from pg_stat_xact_user_tables
     where relname in ('identity_events', 'erasures', 'contacts') order by relname`;
    type Counter = { relname: string; fetched: number; seq_scans: number };
    const work = await other.db.transaction(async (tx) => {
      const before = await queryRows<Counter>(tx, counters);
      const page = await queryRows(
        tx,
        sql`select * from identify_changes(${middle?.transaction_id}::bigint, ${middle?.id}::bigint, 0, 0, 10)`,
      );
      expect(page).toHaveLength(10);
      const after = await queryRows<Counter>(tx, counters);
      return after.map((row, i) => ({
        table: row.relname,
        fetched: row.fetched - (before[i]?.fetched ?? 0),
        seqScans: row.seq_scans - (before[i]?.seq_scans ?? 0),
      }));
    });
    // 10 events, their 10 contacts, and the one erasure row the range read looks at.
    expect(work).toEqual([
      { table: "contacts", fetched: 10, seqScans: 0 },
      { table: "erasures", fetched: expect.any(Number), seqScans: 0 },
      { table: "identity_events", fetched: 10, seqScans: 0 },
    ]);
    expect(work[1]?.fetched).toBeLessThanOrEqual(1);
  });
});
