/**
 * Erasing a customer (lib/forget.ts, drizzle/functions/identify_forget.sql) on a real
 * database; shared by the PGlite and PostgreSQL test files. "No trace" is checked the way an
 * auditor would: a full dump of the database (pg_dump on PostgreSQL, every row of every
 * table as text on PGlite), searched for each erased value.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { asc, type SQL, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection, Database } from "../../lib/db/client.js";
import { checkInvariants, violationCount } from "../../lib/db/invariants.js";
import { queryRows } from "../../lib/db/query.js";
import { erasures, identityEvents } from "../../lib/db/schema.js";
import type { CustomerSelector } from "../../lib/explain.js";
import { type ForgetOptions, forgetCustomer } from "../../lib/forget.js";
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
