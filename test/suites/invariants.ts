/**
 * The invariant checker itself: it must see each kind of damage, or the other tests prove
 * nothing.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../../lib/db/client.js";
import { checkInvariants } from "../../lib/db/invariants.js";
import { rolledBack } from "../../scripts/sql-functions.js";
import { at, plantContact } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";

export function invariantsSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`checkInvariants on ${backend.name}`, () => {
    let connection: Connection;
    beforeAll(async () => {
      connection = await backend.open();
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    const plant = (row: Parameters<typeof plantContact>[1]) => plantContact(connection.db, row);

    it("reports a primary that is newer than one of its secondaries", async () => {
      const primary = await plant({ email: "p@x.io", linkPrecedence: "primary", createdAt: at(5) });
      await plant({
        email: "s@x.io",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      expect((await checkInvariants(connection.db)).primaryNotOldest).toBe(1);
    });

    it("reports a chain of secondaries", async () => {
      const primary = await plant({ email: "p@x.io", linkPrecedence: "primary", createdAt: at(0) });
      const middle = await plant({
        email: "m@x.io",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      await plant({
        email: "l@x.io",
        linkPrecedence: "secondary",
        linkedId: middle.id,
        createdAt: at(2),
      });
      expect((await checkInvariants(connection.db)).secondaryNotOnLivePrimary).toBe(1);
    });

    it("reports an email found in two customers", async () => {
      await plant({ email: "same@x.io", phoneNumber: "1", linkPrecedence: "primary" });
      await plant({ email: "same@x.io", phoneNumber: "2", linkPrecedence: "primary" });
      expect((await checkInvariants(connection.db)).identifierInTwoCustomers).toBe(1);
    });

    it("reports duplicate rows the unique index cannot see because one was deleted and restored", async () => {
      await plant({ email: "d@x.io", phoneNumber: "1", linkPrecedence: "primary" });
      const restored = await plant({
        email: "d@x.io",
        phoneNumber: "1",
        linkPrecedence: "primary",
        deletedAt: at(0),
      });
      // Without the unique index only inside a transaction rolled back afterwards: the
      // database is shared with the other suites, which must find the index where it was.
      const found = await rolledBack(connection.db, async (tx) => {
        await tx.execute(sql`drop index contacts_identity_live_key`);
        await tx.execute(sql`update contacts set deleted_at = null where id = ${restored.id}`);
        return (await checkInvariants(tx)).duplicateRows;
      });
      expect(found).toBe(1);
    });

    it("reports nothing for a consistent customer", async () => {
      const primary = await plant({
        email: "p@x.io",
        phoneNumber: "1",
        linkPrecedence: "primary",
        createdAt: at(0),
      });
      await plant({
        email: "s@x.io",
        phoneNumber: "1",
        linkPrecedence: "secondary",
        linkedId: primary.id,
        createdAt: at(1),
      });
      expect(Object.values(await checkInvariants(connection.db))).toEqual([0, 0, 0, 0]);
    });
  });
}
