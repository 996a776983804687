/**
 * The reconciliation rules, run against a real database. Shared by the PGlite and the
 * PostgreSQL test files so both backends are held to the same contract.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection, Database } from "../../lib/db/client.js";
import { checkInvariants } from "../../lib/db/invariants.js";
import { identify } from "../../lib/identify.js";
import type { IdentifyInput } from "../../lib/input.js";
import { allContacts, at, plantContact } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";

export function reconcilerSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`reconciler on ${backend.name}`, () => {
    let connection: Connection;
    let db: Database;
    const run = (email: string | null, phoneNumber: string | null) =>
      identify(db, { email, phoneNumber } satisfies IdentifyInput, {
        lockTimeoutMs: 5_000,
        requestId: "reconciler-test",
      });

    beforeAll(async () => {
      connection = await backend.open();
      db = connection.db;
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    it("creates a primary when nothing matches", async () => {
      const result = await run("doc@hillvalley.edu", "555");
      const rows = await allContacts(db);
      expect(result.outcome).toBe("created");
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ linkPrecedence: "primary", linkedId: null });
      expect(result.customer).toEqual({
        primaryContactId: rows[0]?.id,
        emails: ["doc@hillvalley.edu"],
        phoneNumbers: ["555"],
        secondaryContactIds: [],
      });
    });

    it("creates a primary from an email alone", async () => {
      const result = await run("doc@hillvalley.edu", null);
      expect(result.customer.emails).toEqual(["doc@hillvalley.edu"]);
      expect(result.customer.phoneNumbers).toEqual([]);
      expect(await allContacts(db)).toHaveLength(1);
    });

    it("adds one secondary holding the request's email and phone when the email is new", async () => {
      const first = await run("lorraine@hillvalley.edu", "123456");
      const second = await run("mcfly@hillvalley.edu", "123456");
      const rows = await allContacts(db);
      expect(second.outcome).toBe("added_secondary");
      expect(rows).toHaveLength(2);
      expect(rows[1]).toMatchObject({
        email: "mcfly@hillvalley.edu",
        phoneNumber: "123456",
        linkPrecedence: "secondary",
        linkedId: first.customer.primaryContactId,
      });
    });

    it("adds a secondary when the phone number is new", async () => {
      await run("doc@hillvalley.edu", "111");
      const result = await run("doc@hillvalley.edu", "222");
      expect(result.outcome).toBe("added_secondary");
      expect(result.customer.phoneNumbers).toEqual(["111", "222"]);
      expect(await allContacts(db)).toHaveLength(2);
    });

    it("answers the first worked example verbatim", async () => {
      const lorraine = await run("lorraine@hillvalley.edu", "123456");
      const mcfly = await run("mcfly@hillvalley.edu", "123456");
      const rows = await allContacts(db);
      const mcflyId = rows.find((row) => row.email === "mcfly@hillvalley.edu")?.id;
      expect(mcfly.customer).toEqual({
        primaryContactId: lorraine.customer.primaryContactId,
        emails: ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"],
        phoneNumbers: ["123456"],
        secondaryContactIds: [mcflyId],
      });
    });

    it("answers lookups after the first worked example with the same customer and writes nothing", async () => {
      await run("lorraine@hillvalley.edu", "123456");
      const expected = (await run("mcfly@hillvalley.edu", "123456")).customer;
      const before = await allContacts(db);
      for (const [email, phone] of [
        [null, "123456"],
        ["lorraine@hillvalley.edu", null],
        ["mcfly@hillvalley.edu", null],
        ["mcfly@hillvalley.edu", "123456"],
      ] as const) {
        const result = await run(email, phone);
        expect(result.outcome).toBe("unchanged");
        expect(result.customer).toEqual(expected);
      }
      expect(await allContacts(db)).toEqual(before);
    });

    it("answers the second worked example by demoting the newer primary without inserting", async () => {
      const george = await run("george@hillvalley.edu", "919191");
      const biff = await run("biffsucks@hillvalley.edu", "717171");
      const before = await allContacts(db);
      const result = await run("george@hillvalley.edu", "717171");
      const rows = await allContacts(db);
      expect(result.outcome).toBe("merged");
      expect(result.customer).toEqual({
        primaryContactId: george.customer.primaryContactId,
        emails: ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
        phoneNumbers: ["919191", "717171"],
        secondaryContactIds: [biff.customer.primaryContactId],
      });
      expect(rows).toHaveLength(2);
      const biffRow = rows.find((row) => row.id === biff.customer.primaryContactId);
      expect(biffRow).toMatchObject({
        linkPrecedence: "secondary",
        linkedId: george.customer.primaryContactId,
      });
      const biffBefore = before.find((row) => row.id === biff.customer.primaryContactId);
      expect(biffRow?.updatedAt.getTime()).toBeGreaterThan(biffBefore?.updatedAt.getTime() ?? 0);
    });

    it("moves every secondary of the demoted primary directly under the older primary", async () => {
      const older = await run("a@x.io", "1");
      const newer = await run("b@x.io", "2");
      await run("c@x.io", "2"); // a secondary of the newer customer
      await run("a@x.io", "2"); // joins the two customers
      const rows = await allContacts(db);
      const secondaries = rows.filter((row) => row.id !== older.customer.primaryContactId);
      expect(secondaries.map((row) => row.linkedId)).toEqual([
        older.customer.primaryContactId,
        older.customer.primaryContactId,
      ]);
      expect(rows.find((row) => row.id === newer.customer.primaryContactId)?.linkPrecedence).toBe(
        "secondary",
      );
    });

    it("keeps the primary with the older created_at even when its id is larger", async () => {
      const newer = await plantContact(db, {
        email: "newer@x.io",
        phoneNumber: "1",
        linkPrecedence: "primary",
        createdAt: at(10),
      });
      const older = await plantContact(db, {
        email: "older@x.io",
        phoneNumber: "2",
        linkPrecedence: "primary",
        createdAt: at(5),
      });
      const result = await run("newer@x.io", "2");
      expect(result.customer.primaryContactId).toBe(older.id);
      expect(result.customer.secondaryContactIds).toEqual([newer.id]);
      expect(result.customer.emails).toEqual(["older@x.io", "newer@x.io"]);
    });

    it("breaks a created_at tie by the lowest id", async () => {
      const first = await plantContact(db, {
        email: "first@x.io",
        linkPrecedence: "primary",
        createdAt: at(1),
      });
      await plantContact(db, { phoneNumber: "9", linkPrecedence: "primary", createdAt: at(1) });
      const result = await run("first@x.io", "9");
      expect(result.customer.primaryContactId).toBe(first.id);
    });

    it("finds the whole customer through a secondary's identifier", async () => {
      const primary = await run("a@x.io", "1");
      await run("b@x.io", "1");
      await run("b@x.io", "2");
      const result = await run(null, "2");
      expect(result.outcome).toBe("unchanged");
      expect(result.customer.primaryContactId).toBe(primary.customer.primaryContactId);
      expect(result.customer.emails).toEqual(["a@x.io", "b@x.io"]);
      expect(result.customer.phoneNumbers).toEqual(["1", "2"]);
    });

    it("links a new secondary to the primary, not to the secondary it matched", async () => {
      const primary = await run("a@x.io", "1");
      await run("b@x.io", "1");
      await run("b@x.io", "2");
      const rows = await allContacts(db);
      expect(
        rows.every(
          (row) =>
            row.id === primary.customer.primaryContactId ||
            row.linkedId === primary.customer.primaryContactId,
        ),
      ).toBe(true);
    });

    it("lists emails and phone numbers once each, primary's first, then by creation", async () => {
      await run("z@x.io", "9");
      await run("a@x.io", "9");
      await run("a@x.io", "1");
      const result = await run("z@x.io", "1");
      expect(result.customer.emails).toEqual(["z@x.io", "a@x.io"]);
      expect(result.customer.phoneNumbers).toEqual(["9", "1"]);
    });

    it("ignores deleted contacts: they never match and are never returned", async () => {
      const deleted = await plantContact(db, {
        email: "gone@x.io",
        phoneNumber: "1",
        linkPrecedence: "primary",
        deletedAt: at(0),
      });
      const result = await run("gone@x.io", "1");
      expect(result.outcome).toBe("created");
      expect(result.customer.primaryContactId).not.toBe(deleted.id);
      expect(result.customer.secondaryContactIds).toEqual([]);
    });

    it("promotes the oldest live contact when a customer's primary was deleted", async () => {
      const primary = await plantContact(db, {
        email: "p@x.io",
        linkPrecedence: "primary",
        createdAt: at(0),
        deletedAt: at(30),
      });
      const a = await plantContact(db, {
        email: "a@x.io",
        phoneNumber: "1",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      const b = await plantContact(db, {
        email: "b@x.io",
        phoneNumber: "1",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(2),
      });
      const result = await run("b@x.io", null);
      expect(result.customer.primaryContactId).toBe(a.id);
      expect(result.customer.secondaryContactIds).toEqual([b.id]);
      expect(await checkInvariants(db)).toMatchObject({ secondaryNotOnLivePrimary: 0 });
    });

    // One rule for soft deletion, whichever contact it is: a deleted contact is invisible
    // (its values find nothing, it is never returned) but the links made through it hold,
    // so the rest of its customer stays one customer under its oldest live contact.
    it("keeps a customer whole when its primary is deleted, the deleted primary invisible", async () => {
      const primary = await plantContact(db, {
        email: "p@x.io",
        linkPrecedence: "primary",
        createdAt: at(0),
        deletedAt: at(30),
      });
      // Merged in: shares no value with the other secondary, only the primary.
      const merged = await plantContact(db, {
        email: "q@x.io",
        phoneNumber: "2",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      const other = await plantContact(db, {
        email: "s@x.io",
        phoneNumber: "3",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(2),
      });
      const fromOther = await run("s@x.io", null);
      expect(fromOther.customer).toEqual({
        primaryContactId: merged.id,
        emails: ["q@x.io", "s@x.io"],
        phoneNumbers: ["2", "3"],
        secondaryContactIds: [other.id],
      });
      expect((await run("q@x.io", null)).customer).toEqual(fromOther.customer);
      expect(await checkInvariants(db)).toMatchObject({ secondaryNotOnLivePrimary: 0 });

      const byDeletedValue = await run("p@x.io", null);
      expect(byDeletedValue.outcome).toBe("created");
      expect(byDeletedValue.customer.secondaryContactIds).toEqual([]);
    });

    it("keeps a customer whole when a secondary bridging it is deleted, the same way", async () => {
      const primary = await plantContact(db, {
        email: "p@x.io",
        phoneNumber: "1",
        linkPrecedence: "primary",
        createdAt: at(0),
      });
      const bridge = await plantContact(db, {
        email: "s@x.io",
        phoneNumber: "2",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
        deletedAt: at(30),
      });
      // Older data: linked through the bridge, sharing no value with the primary.
      const leaf = await plantContact(db, {
        email: "t@x.io",
        phoneNumber: "3",
        linkPrecedence: "secondary",
        linkedId: bridge.id,
        createdAt: at(2),
      });
      const fromLeaf = await run("t@x.io", null);
      expect(fromLeaf.outcome).toBe("merged");
      expect(fromLeaf.customer).toEqual({
        primaryContactId: primary.id,
        emails: ["p@x.io", "t@x.io"],
        phoneNumbers: ["1", "3"],
        secondaryContactIds: [leaf.id],
      });
      expect((await run("p@x.io", null)).customer).toEqual(fromLeaf.customer);
      expect(await checkInvariants(db)).toMatchObject({ secondaryNotOnLivePrimary: 0 });

      const byDeletedValue = await run("s@x.io", null);
      expect(byDeletedValue.outcome).toBe("created");
      expect(byDeletedValue.customer.secondaryContactIds).toEqual([]);
    });

    // From its end the request meets the chain; from its primary the one-hop read sees a
    // customer that looks whole until it finds the contact linked to a secondary.
    it.each([
      ["its end", "leaf@x.io"],
      ["its primary", "root@x.io"],
    ])("heals a chain of secondaries left by older data, reached from %s", async (_, email) => {
      const root = await plantContact(db, {
        email: "root@x.io",
        linkPrecedence: "primary",
        createdAt: at(0),
      });
      const middle = await plantContact(db, {
        email: "middle@x.io",
        linkPrecedence: "secondary",
        linkedId: root.id,
        createdAt: at(1),
      });
      const leaf = await plantContact(db, {
        email: "leaf@x.io",
        linkPrecedence: "secondary",
        linkedId: middle.id,
        createdAt: at(2),
      });
      const result = await run(email, null);
      expect(result.outcome).toBe("merged");
      expect(result.customer.primaryContactId).toBe(root.id);
      expect(result.customer.secondaryContactIds).toEqual([middle.id, leaf.id]);
      const rows = await allContacts(db);
      expect(rows.find((row) => row.id === leaf.id)?.linkedId).toBe(root.id);
    });

    it("joins two primaries of older data that share a value when a request reaches one of them", async () => {
      const older = await plantContact(db, {
        email: "older@x.io",
        phoneNumber: "42",
        linkPrecedence: "primary",
        createdAt: at(0),
      });
      const newer = await plantContact(db, {
        email: "newer@x.io",
        phoneNumber: "42",
        linkPrecedence: "primary",
        createdAt: at(1),
      });
      const result = await run("older@x.io", null);
      expect(result.outcome).toBe("merged");
      expect(result.customer).toMatchObject({
        primaryContactId: older.id,
        emails: ["older@x.io", "newer@x.io"],
        secondaryContactIds: [newer.id],
      });
    });

    it("makes a secondary older than its primary the primary when a request reaches them", async () => {
      const primary = await plantContact(db, {
        email: "primary@x.io",
        linkPrecedence: "primary",
        createdAt: at(5),
      });
      const older = await plantContact(db, {
        email: "older@x.io",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      const result = await run("primary@x.io", null);
      expect(result.outcome).toBe("merged");
      expect(result.customer.primaryContactId).toBe(older.id);
      expect(result.customer.secondaryContactIds).toEqual([primary.id]);
      expect(await checkInvariants(db)).toMatchObject({ primaryNotOldest: 0 });
    });

    it("joins customers reached through the email and the phone of one request transitively", async () => {
      const a = await run("a@x.io", "1");
      await run("b@x.io", "2");
      await run("c@x.io", "3");
      await run("b@x.io", "3"); // joins b and c
      const result = await run("a@x.io", "3"); // joins a with (b, c)
      expect(result.customer.primaryContactId).toBe(a.customer.primaryContactId);
      expect(result.customer.emails).toEqual(["a@x.io", "b@x.io", "c@x.io"]);
      expect(await checkInvariants(db)).toEqual({
        primaryNotOldest: 0,
        secondaryNotOnLivePrimary: 0,
        identifierInTwoCustomers: 0,
        duplicateRows: 0,
      });
    });
  });
}
