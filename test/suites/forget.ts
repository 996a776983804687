/**
 * Erasing a customer (lib/forget.ts, drizzle/functions/identify_forget.sql) on a real
 * database; shared by the PGlite and PostgreSQL test files. "No trace" is checked the way an
 * auditor would: a full dump of the database (pg_dump on PostgreSQL, every row of every
 * table as text on PGlite), searched for each erased value.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { asc, type SQL, sql } from "drizzle-orm";
import { TransactionRollbackError } from "drizzle-orm/errors";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection, Database } from "../../lib/db/client.js";
import { checkInvariants, violationCount } from "../../lib/db/invariants.js";
import { queryRows } from "../../lib/db/query.js";
import { erasures, identityEvents } from "../../lib/db/schema.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../../lib/db/sql-contract.js";
import type { CustomerSelector } from "../../lib/explain.js";
import {
  CustomerTooLargeError,
  type ForgetOptions,
  forgetCustomer,
  InvalidRequestIdError,
} from "../../lib/forget.js";
import { identify } from "../../lib/identify.js";
import { allContacts, plantContact } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";
import { failureOf, INSUFFICIENT_PRIVILEGE } from "../support/errors.js";

/** Values no schema, function or other row could contain by chance. */
const DOC = { email: "doc.brown@erase-me.test", phone: "5550119551" };
const MARTY = { email: "marty.mcfly@erase-me.test", phone: "5550119552" };
const JENNIFER = { email: "jennifer.parker@erase-me.test", phone: "5550119553" };
const BIFF = { email: "biff.tannen@keep-me.test", phone: "5550119554" };
/** Every value Doc's customer holds (plantCustomers); Marty's phone is never stored. */
const ERASED_VALUES = [DOC.email, DOC.phone, MARTY.email, JENNIFER.email, JENNIFER.phone];

/** Request ids shaped like ticket references, which the erasure record accepts. */
const TICKET_REFERENCES = [
  "PRIV-1234",
  "forget-0b7e4c1a-3f7d-4c55-9a3e-2f1d0c9b8a76",
  "JIRA:PRIV-1234",
  "zendesk#88123",
  "gh/acme/privacy#12",
  "r2.d2_x",
  `T${"1".repeat(63)}`,
];

/** Request ids a person's data could be typed as by mistake, which it refuses. */
const NOT_TICKET_REFERENCES: [string, string][] = [
  ["an email", "doc.brown1985@hillvalley.edu"],
  ["an email with a ticket's shape", "PRIV-1234@example.com"],
  ["a phone number", "5550119551"],
  ["a phone number with a plus", "+15550119551"],
  ["a name with a space", "Doc Brown 1985"],
  ["a name without a digit", "DocBrown"],
  ["a value too long", `T${"1".repeat(64)}`],
  ["an empty value", ""],
];

/** Contacts and indexes rows this transaction read (pg_stat_get_xact_tuples_returned). */
const tuplesRead = sql`select coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0)::bigint as n
                         from pg_class c where c.relname like 'contacts%'`;

export function forgetSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`erasing a customer on ${backend.name}`, () => {
    let connection: Connection;
    let db: Database;
    const run = (email: string | null, phoneNumber: string | null, requestId = "req") =>
      identify(db, { email, phoneNumber }, { lockTimeoutMs: 10_000, requestId });
    const forget = (selector: CustomerSelector, options: Partial<ForgetOptions> = {}) =>
      forgetCustomer(db, selector, { requestId: "ticket-42", lockTimeoutMs: 10_000, ...options });
    const events = () => db.select().from(identityEvents).orderBy(asc(identityEvents.id));

    /**
     * Doc's customer: Doc, Marty under Doc through Doc's phone, and Jennifer, a customer of
     * her own until a request linked her to Doc's email: a merge. Biff is someone else.
     */
    async function plantCustomers() {
      const doc = (await run(DOC.email, DOC.phone)).customer.primaryContactId;
      const biff = (await run(BIFF.email, BIFF.phone)).customer.primaryContactId;
      const marty = (await run(MARTY.email, DOC.phone)).customer.secondaryContactIds[0];
      const jennifer = (await run(JENNIFER.email, JENNIFER.phone)).customer.primaryContactId;
      await run(DOC.email, JENNIFER.phone, "req-merge");
      if (marty === undefined) throw new Error("Marty was not added as a secondary");
      return { doc, marty, jennifer, biff };
    }

    /** The whole database as text: what an auditor searching for a value would read. */
    async function fullDump(): Promise<string> {
      const url = backend.url();
      if (url !== undefined) {
        const { stdout } = await promisify(execFile)("pg_dump", ["--dbname", url], {
          maxBuffer: 64 * 1024 * 1024,
        });
        return stdout;
      }
      const tables = await queryRows<{ name: string }>(
        db,
        sql`select format('%I.%I', schemaname, tablename) as name from pg_tables
             where schemaname not in ('pg_catalog', 'information_schema')`,
      );
      const dumps = await Promise.all(
        tables.map(async ({ name }) => {
          const [row] = await queryRows<{ rows: string }>(
            db,
            sql.raw(`select coalesce(string_agg(t::text, E'\\n'), '') as rows from ${name} t`),
          );
          return `-- ${name}\n${row?.rows ?? ""}`;
        }),
      );
      return dumps.join("\n");
    }

    beforeAll(async () => {
      connection = await backend.open();
      db = connection.db;
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    const selectors: [
      string,
      (ids: Awaited<ReturnType<typeof plantCustomers>>) => CustomerSelector,
    ][] = [
      ["the primary's email", () => ({ email: DOC.email })],
      ["the merged-in contact's phone", () => ({ phoneNumber: JENNIFER.phone })],
      ["a secondary's contact id", (ids) => ({ id: ids.marty })],
    ];
    it.each(selectors)(
      "leaves none of the customer's values in a full dump when erased by %s",
      async (_, selectorOf) => {
        const ids = await plantCustomers();
        const before = await fullDump();
        for (const value of ERASED_VALUES) expect(before).toContain(value);

        await forget(selectorOf(ids));

        const after = await fullDump();
        for (const value of ERASED_VALUES) expect(after).not.toContain(value);
        expect(after).toContain(BIFF.email);
      },
    );

    it("erases every contact of the customer and their events, and reports them by id", async () => {
      const ids = await plantCustomers();
      const result = await forget({ email: DOC.email });
      const erased = [ids.doc, ids.marty, ids.jennifer].sort((a, b) => a - b);
      expect(result.contactIds).toEqual(erased);
      expect((await allContacts(db)).map((c) => c.id)).toEqual([ids.biff]);
      expect((await events()).map((e) => e.contactId)).toEqual([ids.biff]);
    });

    it("keeps an erasure record of when, which ids, how many and which request, and no value", async () => {
      const ids = await plantCustomers();
      const eventsBefore = (await events()).filter((e) => e.contactId !== ids.biff).length;
      const result = await forget({ email: DOC.email });
      const records = await db.select().from(erasures);
      expect(records).toEqual([
        {
          id: result.erasureId,
          occurredAt: expect.any(Date),
          requestId: "ticket-42",
          contactIds: result.contactIds,
          contactCount: 3,
          eventCount: eventsBefore,
          transactionId: expect.any(Number),
        },
      ]);
      const text = JSON.stringify(records);
      for (const value of ERASED_VALUES) expect(text).not.toContain(value);
    });

    it("leaves another customer's contacts and events as they were", async () => {
      const ids = await plantCustomers();
      const biffBefore = (await allContacts(db)).filter((c) => c.id === ids.biff);
      const biffEvents = (await events()).filter((e) => e.contactId === ids.biff);
      await forget({ phoneNumber: DOC.phone });
      expect(await allContacts(db)).toEqual(biffBefore);
      expect(await events()).toEqual(biffEvents);
    });

    it("keeps every invariant after an erasure", async () => {
      await plantCustomers();
      await forget({ email: MARTY.email });
      expect(violationCount(await checkInvariants(db))).toBe(0);
    });

    it("starts a brand-new customer when the erased email comes back", async () => {
      const ids = await plantCustomers();
      await forget({ email: DOC.email });
      const again = await run(DOC.email, MARTY.phone, "req-return");
      expect(again.outcome).toBe("created");
      expect(again.customer.primaryContactId).toBeGreaterThan(ids.jennifer);
      expect(again.customer.secondaryContactIds).toEqual([]);
      expect(again.customer.phoneNumbers).toEqual([MARTY.phone]);
    });

    it("answers an identifier nobody has with nothing to erase, and writes nothing", async () => {
      await plantCustomers();
      const contactsBefore = await allContacts(db);
      const result = await forget({ email: "nobody@erase-me.test" });
      expect(result).toEqual({ contactIds: [], eventCount: 0, erasureId: null, dryRun: false });
      expect(await allContacts(db)).toEqual(contactsBefore);
      expect(await db.select().from(erasures)).toEqual([]);
    });

    it("in a dry run reports what it would erase and changes nothing", async () => {
      const ids = await plantCustomers();
      const contactsBefore = await allContacts(db);
      const eventsBefore = await events();
      const result = await forget({ id: ids.jennifer }, { dryRun: true });
      expect(result.contactIds).toEqual([ids.doc, ids.marty, ids.jennifer].sort((a, b) => a - b));
      expect(result.eventCount).toBe(eventsBefore.filter((e) => e.contactId !== ids.biff).length);
      expect(result.erasureId).toBeNull();
      expect(await allContacts(db)).toEqual(contactsBefore);
      expect(await events()).toEqual(eventsBefore);
      expect(await db.select().from(erasures)).toEqual([]);
    });

    it("erases a soft-deleted contact that was part of the customer", async () => {
      const ids = await plantCustomers();
      await db.execute(sql`update contacts set deleted_at = now() where id = ${ids.marty}`);
      const result = await forget({ email: DOC.email });
      expect(result.contactIds).toContain(ids.marty);
      expect(await fullDump()).not.toContain(MARTY.email);
    });

    it("refuses (55000) when another customer's live contact links to a contact being erased", async () => {
      // Older data: a deleted contact holding Doc's email, which a live stranger links to.
      const doc = await plantContact(db, {
        email: DOC.email,
        phoneNumber: DOC.phone,
        linkPrecedence: "primary",
      });
      const deleted = await plantContact(db, {
        email: DOC.email,
        phoneNumber: MARTY.phone,
        linkPrecedence: "primary",
        deletedAt: new Date(),
      });
      const stranger = await plantContact(db, {
        email: BIFF.email,
        linkedId: deleted.id,
        linkPrecedence: "secondary",
      });
      const error = await failureOf(forget({ email: DOC.email }));
      expect(error).toMatchObject({ code: "55000" });
      expect(String(error)).toContain(`contact ${stranger.id} of another customer`);
      expect((await allContacts(db)).map((c) => c.id)).toEqual([doc.id, deleted.id, stranger.id]);
    });

    it("refuses to erase by a junk email, which names no one customer", async () => {
      await plantCustomers();
      await expect(
        forget({ email: DOC.email }, { guardrails: { junkEmails: [DOC.email] } }),
      ).rejects.toMatchObject({ code: "22023" });
      expect(await allContacts(db)).toHaveLength(4);
    });

    it("never quotes the identifier in the error it throws", async () => {
      await plantCustomers();
      const error = await failureOf(
        forget({ email: DOC.email }, { guardrails: { junkEmails: [DOC.email] } }),
      );
      expect(String(error)).toContain("junk");
      expect(String(error)).not.toContain(DOC.email);
    });

    /** One customer of `size` contacts, huge0@… and its secondaries, inserted in bulk. */
    const plantHugeCustomer = (size: number) =>
      db.execute(sql`with p as (
                       insert into contacts (email, phone_number, link_precedence)
                       values ('huge0@erase-me.test', '7000000', 'primary') returning id)
                     insert into contacts (email, phone_number, linked_id, link_precedence)
                     select 'huge' || g || '@erase-me.test', (7000000 + g)::text, p.id, 'secondary'
                       from p, generate_series(1, ${size - 1}::integer) g`);

    /**
     * Rows identify_forget reads for `email` with these options, in a transaction rolled back
     * (with a savepoint, so that a refusal leaves it usable to read the counters).
     */
    async function workOfForget(email: string, options: object): Promise<number> {
      let work = 0;
      await db
        .transaction(async (tx) => {
          const [before] = await queryRows<{ n: string }>(tx, tuplesRead);
          await tx
            .transaction((savepoint) =>
              queryRows(
                savepoint,
                sql`select * from identify_forget(${email}::text, null, null, ${JSON.stringify({ lockTimeoutMs: 5_000, ...options })}::jsonb)`,
              ),
            )
            .catch(() => undefined);
          const [after] = await queryRows<{ n: string }>(tx, tuplesRead);
          work = Number(after?.n) - Number(before?.n);
          tx.rollback();
        })
        .catch((error: unknown) => {
          if (!(error instanceof TransactionRollbackError)) throw error;
        });
      return work;
    }

    it("refuses a customer of more contacts than the cap, naming the cap, and erases nothing", async () => {
      await plantCustomers();
      const contactsBefore = await allContacts(db);
      const eventsBefore = await events();
      const error = await failureOf(
        forget({ email: DOC.email }, { guardrails: { maxContacts: 2 } }),
      );
      expect(error).toBeInstanceOf(CustomerTooLargeError);
      expect(error).toMatchObject({ code: SQLSTATE_CUSTOMER_TOO_LARGE, maxContacts: 2 });
      expect(String(error)).toContain("more than 2 contacts");
      expect(await allContacts(db)).toEqual(contactsBefore);
      expect(await events()).toEqual(eventsBefore);
      expect(await db.select().from(erasures)).toEqual([]);
    });

    it("refuses a customer over the cap in a dry run too", async () => {
      const ids = await plantCustomers();
      await expect(
        forget({ id: ids.marty }, { dryRun: true, guardrails: { maxContacts: 2 } }),
      ).rejects.toBeInstanceOf(CustomerTooLargeError);
    });

    it("erases a customer over the cap when told to, the search then having no cap", async () => {
      const ids = await plantCustomers();
      const result = await forget(
        { email: DOC.email },
        { guardrails: { maxContacts: 2 }, overCap: true },
      );
      expect(result.contactIds).toEqual([ids.doc, ids.marty, ids.jennifer].sort((a, b) => a - b));
      expect((await allContacts(db)).map((c) => c.id)).toEqual([ids.biff]);
    });

    it("erases a customer of exactly the cap's contacts", async () => {
      const ids = await plantCustomers();
      const result = await forget({ phoneNumber: DOC.phone }, { guardrails: { maxContacts: 3 } });
      expect(result.contactIds).toHaveLength(3);
      expect((await allContacts(db)).map((c) => c.id)).toEqual([ids.biff]);
    });

    it("reads about the cap's worth of rows before refusing a customer far over it", async () => {
      await plantHugeCustomer(3_000);
      const capped = await workOfForget("huge1234@erase-me.test", { maxContacts: 100 });
      const uncapped = await workOfForget("huge1234@erase-me.test", { dryRun: true });
      // Two rows read per contact found (the index entry and the row), plus the values.
      expect(capped).toBeGreaterThan(100);
      expect(capped).toBeLessThan(1_000);
      expect(uncapped).toBeGreaterThan(3_000);
      expect(await allContacts(db)).toHaveLength(3_000);
    });

    it.each(TICKET_REFERENCES)(
      "records the ticket reference %s as the request id",
      async (ticket) => {
        await plantCustomers();
        const result = await forget({ email: DOC.email }, { requestId: ticket });
        const [record] = await db.select().from(erasures);
        expect(record).toMatchObject({ id: result.erasureId, requestId: ticket });
      },
    );

    it.each(NOT_TICKET_REFERENCES)(
      "refuses %s as the request id, without repeating it, and erases nothing",
      async (_, requestId) => {
        await plantCustomers();
        const contactsBefore = await allContacts(db);
        const error = await failureOf(forget({ email: DOC.email }, { requestId }));
        expect(error).toBeInstanceOf(InvalidRequestIdError);
        expect(String(error)).toContain("a ticket reference such as PRIV-1234");
        if (requestId !== "") expect(String(error)).not.toContain(requestId);
        expect(await allContacts(db)).toEqual(contactsBefore);
        expect(await db.select().from(erasures)).toEqual([]);
      },
    );

    it("refuses a request id that is no ticket reference before touching the database", async () => {
      const untouchable = new Proxy({} as Database, {
        get() {
          throw new Error("the database was touched");
        },
      });
      await expect(
        forgetCustomer(untouchable, { email: DOC.email }, { requestId: DOC.email }),
      ).rejects.toBeInstanceOf(InvalidRequestIdError);
    });

    /** Records, in one transaction, an erasure listing `listed`, then runs `statement`. */
    const withErasureOf = (listed: number, statement: SQL) =>
      db.transaction(async (tx) => {
        await tx
          .insert(erasures)
          .values({ requestId: "by-hand", contactIds: [listed], contactCount: 1, eventCount: 0 });
        await tx.execute(statement);
      });

    it("allows deleting the events of a contact an erasure of the same transaction lists", async () => {
      const ids = await plantCustomers();
      await withErasureOf(ids.doc, sql`delete from identity_events where contact_id = ${ids.doc}`);
      expect((await events()).filter((e) => e.contactId === ids.doc)).toEqual([]);
    });

    it("refuses to delete an event whose contact no erasure of the transaction lists", async () => {
      const ids = await plantCustomers();
      await expect(
        withErasureOf(ids.biff, sql`delete from identity_events where contact_id = ${ids.doc}`),
      ).rejects.toMatchObject({ cause: { code: INSUFFICIENT_PRIVILEGE } });
    });

    it("refuses to delete an event whose contact only an earlier transaction's erasure lists", async () => {
      const ids = await plantCustomers();
      await withErasureOf(ids.doc, sql`select 1`);
      await expect(
        db.execute(sql`delete from identity_events where contact_id = ${ids.doc}`),
      ).rejects.toMatchObject({ cause: { code: INSUFFICIENT_PRIVILEGE } });
    });

    it("refuses to update an event even of a contact an erasure of the transaction lists", async () => {
      const ids = await plantCustomers();
      await expect(
        withErasureOf(
          ids.doc,
          sql`update identity_events set request_id = 'forged' where contact_id = ${ids.doc}`,
        ),
      ).rejects.toMatchObject({ cause: { code: INSUFFICIENT_PRIVILEGE } });
    });

    it("refuses to update or delete an erasure record", async () => {
      await plantCustomers();
      await forget({ email: DOC.email });
      await expect(db.execute(sql`update erasures set request_id = 'forged'`)).rejects.toThrow();
      await expect(db.execute(sql`delete from erasures`)).rejects.toThrow();
      expect(await db.select().from(erasures)).toHaveLength(1);
    });

    it("leaves the customer fully erased or fully re-created when requests storm it during the erasure", async () => {
      const ids = await plantCustomers();
      const known = [ids.doc, ids.marty, ids.jennifer];
      // Every request carries Doc's phone: whatever comes after the erasure is one customer.
      const storm = Array.from({ length: 24 }, (_, i) =>
        run(i % 3 === 0 ? DOC.email : `guest${i}@erase-me.test`, DOC.phone, `storm-${i}`),
      );
      const [erasure] = await Promise.all([forget({ email: MARTY.email }), ...storm]);

      const rows = await allContacts(db);
      const left = rows.filter((c) => c.id !== ids.biff);
      expect(left.filter((c) => known.includes(c.id) || erasure.contactIds.includes(c.id))).toEqual(
        [],
      );
      expect(left.filter((c) => c.linkPrecedence === "primary").length).toBeLessThanOrEqual(1);
      const primary = left.find((c) => c.linkPrecedence === "primary");
      expect(left.every((c) => c.id === primary?.id || c.linkedId === primary?.id)).toBe(true);
      expect(violationCount(await checkInvariants(db))).toBe(0);
    });
  });
}
