/**
 * The fast path of the customer read is exact: identify_lock_customer
 * (drizzle/functions/identify_lock_customer.sql) reads a customer by its one-hop read when it
 * can, and by the walk (identify_customer_contacts) otherwise, and `p_walk => true` forces the
 * walk. Every shape of customer here is read both ways, and the two must agree on the members,
 * the lock keys and every flag, over-cap refusals included; where the one-hop read should
 * serve, the test also requires that it did, or the comparison would prove nothing.
 */
import { type SQL, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../../lib/db/client.js";
import { sqlState } from "../../lib/db/errors.js";
import { queryRows, sqlArray } from "../../lib/db/query.js";
import type { Contact, NewContact } from "../../lib/db/schema.js";
import { at, plantContact } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";

/** A customer read: what identify_lock_customer returned, or the SQLSTATE it raised. */
interface Read {
  memberIds?: number[];
  keys?: number[];
  flat?: boolean;
  hasEmail?: boolean;
  hasPhone?: boolean;
  walked?: boolean;
  error?: string;
}

/** A request as identify_contact hands it over; the linking values default to the request's. */
interface Request {
  email?: string | null;
  phone?: string | null;
  linkEmail?: string | null;
  linkPhone?: string | null;
  seeds?: number[];
  options?: Record<string, unknown>;
  maxContacts?: number | null;
}

export function lockCustomerSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`identify_lock_customer on ${backend.name}`, () => {
    let connection: Connection;
    beforeAll(async () => {
      connection = await backend.open();
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    const plant = (row: Omit<NewContact, "id">) => plantContact(connection.db, row);
    const primary = (row: Omit<NewContact, "id" | "linkPrecedence">) =>
      plant({ ...row, linkPrecedence: "primary" });
    const secondary = (of: Contact, row: Omit<NewContact, "id" | "linkPrecedence" | "linkedId">) =>
      plant({ ...row, linkPrecedence: "secondary", linkedId: of.id });

    function call(request: Request, walk: boolean): SQL {
      const email = request.email ?? null;
      const phone = request.phone ?? null;
      const linkEmail = request.linkEmail === undefined ? email : request.linkEmail;
      const linkPhone = request.linkPhone === undefined ? phone : request.linkPhone;
      return sql`select member_ids as "memberIds", keys, flat, has_email as "hasEmail",
                        has_phone as "hasPhone", walked
                   from identify_lock_customer(${email}::text, ${phone}::text, ${linkEmail}::text,
                          ${linkPhone}::text, ${sqlArray(request.seeds ?? [], "integer")},
                          ${JSON.stringify(request.options ?? {})}::jsonb,
                          ${request.maxContacts ?? null}::integer, null, 5000, ${walk})`;
    }

    async function read(request: Request, walk: boolean): Promise<Read> {
      try {
        const [row] = await queryRows<Read>(connection.db, call(request, walk));
        if (!row) throw new Error("identify_lock_customer returned no row");
        return { ...row, memberIds: [...(row.memberIds ?? [])].sort((a, b) => a - b) };
      } catch (error) {
        const code = sqlState(error);
        if (!code) throw error;
        return { error: code };
      }
    }

    /** Both reads of one request; they must agree on all but which read served. */
    async function readBoth(request: Request) {
      const fast = await read(request, false);
      const walked = await read(request, true);
      const { walked: _fastWalked, ...fastResult } = fast;
      const { walked: _walkWalked, ...walkResult } = walked;
      expect(fastResult).toEqual(walkResult);
      // (Values that reach nobody are read by neither.)
      if (walked.memberIds?.length) expect(walked.walked).toBe(true);
      return fast;
    }

    it("reads a canonical customer by its one-hop read exactly as the walk does", async () => {
      const p = await primary({ email: "a@x.io", phoneNumber: "100", createdAt: at(0) });
      const s1 = await secondary(p, { email: "b@x.io", phoneNumber: "100", createdAt: at(1) });
      const s2 = await secondary(p, { email: "a@x.io", phoneNumber: "101", createdAt: at(2) });
      const fast = await readBoth({ email: "b@x.io", phone: "101" });
      expect(fast).toEqual({
        memberIds: [p.id, s1.id, s2.id],
        keys: [p.id],
        flat: true,
        hasEmail: true,
        hasPhone: true,
        walked: false,
      });
    });

    it("reads a lone contact by its one-hop read, new values included, as the walk does", async () => {
      const p = await primary({ email: "a@x.io", phoneNumber: null, createdAt: at(0) });
      const fast = await readBoth({ email: "a@x.io", phone: "200" });
      expect(fast).toMatchObject({ memberIds: [p.id], hasPhone: false, walked: false });
    });

    it("reads a customer whose primary is newer than a secondary as the walk does, with both keys", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(5) });
      const s = await secondary(p, { email: "b@x.io", createdAt: at(1) });
      // (The one-hop read finds the second key; the pass that holds both walks.)
      expect(await readBoth({ email: "a@x.io" })).toMatchObject({
        keys: [p.id, s.id].sort((a, b) => a - b),
        flat: false,
      });
    });

    it("reads a chain (a secondary of a secondary) as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      const middle = await secondary(p, { email: "b@x.io", createdAt: at(1) });
      const end = await secondary(middle, { email: "c@x.io", createdAt: at(2) });
      for (const email of ["a@x.io", "b@x.io", "c@x.io"]) {
        expect(await readBoth({ email })).toMatchObject({
          memberIds: [p.id, middle.id, end.id],
          flat: false,
        });
      }
    });

    it("reads split primaries linked through a shared value as the walk does, with both keys", async () => {
      const p1 = await primary({ email: "a@x.io", phoneNumber: "100", createdAt: at(0) });
      const s = await secondary(p1, { email: "b@x.io", phoneNumber: "300", createdAt: at(1) });
      const p2 = await primary({ email: "c@x.io", phoneNumber: "300", createdAt: at(2) });
      for (const email of ["a@x.io", "c@x.io"]) {
        expect(await readBoth({ email })).toMatchObject({
          memberIds: [p1.id, s.id, p2.id],
          keys: [p1.id, p2.id],
        });
      }
    });

    it("reads the rest of a customer whose primary is deleted as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0), deletedAt: at(9) });
      const s1 = await secondary(p, { email: "b@x.io", createdAt: at(1) });
      const s2 = await secondary(p, { email: "c@x.io", createdAt: at(2) });
      expect(await readBoth({ email: "b@x.io" })).toMatchObject({
        memberIds: [s1.id, s2.id],
        keys: [s1.id],
      });
    });

    it("reads across a deleted bridge whose link holds as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      const bridge = await secondary(p, { email: "b@x.io", createdAt: at(1), deletedAt: at(9) });
      const end = await secondary(bridge, { email: "c@x.io", createdAt: at(2) });
      // Upwards through the deleted contact's link; downwards the linked_id index holds live
      // rows only (identify_customer_contacts.sql), so the primary alone reaches itself.
      expect(await readBoth({ email: "c@x.io" })).toMatchObject({ memberIds: [p.id, end.id] });
      expect(await readBoth({ email: "a@x.io" })).toMatchObject({
        memberIds: [p.id],
        walked: false,
      });
    });

    it("reads a customer by its one-hop read when a deleted contact shared its values", async () => {
      const p = await primary({ email: "a@x.io", phoneNumber: "100", createdAt: at(0) });
      await primary({ email: "a@x.io", phoneNumber: "300", createdAt: at(1), deletedAt: at(9) });
      await primary({ email: "z@x.io", phoneNumber: "300", createdAt: at(2) });
      expect(await readBoth({ email: "a@x.io" })).toMatchObject({
        memberIds: [p.id],
        walked: false,
      });
    });

    it("reads a customer holding a junk value shared with another customer as the walk does", async () => {
      const options = { junkEmails: ["none@x.io"] };
      const p = await primary({ email: "none@x.io", phoneNumber: "100", createdAt: at(0) });
      const s = await secondary(p, { email: "a@x.io", phoneNumber: "100", createdAt: at(1) });
      await primary({ email: "none@x.io", phoneNumber: "200", createdAt: at(2) });
      expect(await readBoth({ phone: "100", options })).toMatchObject({
        memberIds: [p.id, s.id],
        keys: [p.id],
      });
    });

    it("reads a junk-only request's contact through its seed as the walk does", async () => {
      const options = { junkEmails: ["none@x.io"] };
      const p = await primary({ email: "none@x.io", createdAt: at(0) });
      await primary({ email: "none@x.io", phoneNumber: "200", createdAt: at(1) });
      expect(
        await readBoth({ email: "none@x.io", linkEmail: null, seeds: [p.id], options }),
      ).toMatchObject({ memberIds: [p.id], keys: [p.id] });
    });

    it("reads a customer at the cap by its one-hop read as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      await secondary(p, { email: "b@x.io", createdAt: at(1) });
      await secondary(p, { email: "c@x.io", createdAt: at(2) });
      const fast = await readBoth({ email: "a@x.io", maxContacts: 3 });
      expect(fast.memberIds).toHaveLength(3);
      expect(fast.walked).toBe(false);
    });

    it("refuses a canonical customer over the cap with IDC01 as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      for (const minute of [1, 2, 3])
        await secondary(p, { email: `${minute}@x.io`, createdAt: at(minute) });
      expect(await readBoth({ email: "a@x.io", maxContacts: 3 })).toEqual({ error: "IDC01" });
    });

    it("refuses a chained customer over the cap with IDC01 as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      const middle = await secondary(p, { email: "b@x.io", createdAt: at(1) });
      await secondary(middle, { email: "c@x.io", createdAt: at(2) });
      expect(await readBoth({ email: "c@x.io", maxContacts: 2 })).toEqual({ error: "IDC01" });
    });

    it("reads a customer larger than the one-hop read serves as the walk does", async () => {
      const p = await primary({ email: "a@x.io", createdAt: at(0) });
      await connection.db.execute(sql`
        insert into contacts (email, linked_id, link_precedence, created_at)
        select 'n' || n || '@x.io', ${p.id}, 'secondary', ${at(1).toISOString()}::timestamptz
          from generate_series(1, 100) n`);
      const fast = await readBoth({ email: "a@x.io" });
      expect(fast.memberIds).toHaveLength(101);
      expect(fast.walked).toBe(true);
    });

    it("reads nobody, and locks nothing, for values no contact holds", async () => {
      await primary({ email: "a@x.io", createdAt: at(0) });
      expect(await readBoth({ email: "b@x.io", phone: "100" })).toMatchObject({
        memberIds: [],
        keys: null,
      });
    });

    it("holds exactly the customer locks it returns as keys", async () => {
      const p1 = await primary({ email: "a@x.io", phoneNumber: "100", createdAt: at(0) });
      await secondary(p1, { email: "b@x.io", phoneNumber: "300", createdAt: at(1) });
      const p2 = await primary({ email: "c@x.io", phoneNumber: "300", createdAt: at(2) });
      const held = await connection.db.transaction(async (tx) => {
        const [row] = await queryRows<Read>(tx, call({ email: "c@x.io" }, false));
        // Two-key advisory locks: objsubid 2, the contact id in objid.
        const locks = await queryRows<{ objid: number }>(
          tx,
          sql`select objid::text::integer as objid from pg_locks
               where locktype = 'advisory' and objsubid = 2 and pid = pg_backend_pid()
               order by 1`,
        );
        return { keys: row?.keys, locked: locks.map((lock) => lock.objid) };
      });
      expect(held).toEqual({ keys: [p1.id, p2.id], locked: [p1.id, p2.id] });
    });
  });
}
