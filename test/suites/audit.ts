/**
 * The audit trail and the over-merge guardrails on a real database; shared by the PGlite
 * and PostgreSQL test files. The audit trail is written by the same statement as the
 * change, so its rows must describe exactly what happened.
 */
import { asc, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection, Database } from "../../lib/db/client.js";
import { sqlState } from "../../lib/db/errors.js";
import { checkInvariants } from "../../lib/db/invariants.js";
import { identityEvents } from "../../lib/db/schema.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../../lib/db/sql-contract.js";
import type { Guardrails } from "../../lib/guardrails.js";
import { identify } from "../../lib/identify.js";
import { allContacts } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";
import { databaseError, failureOf, INSUFFICIENT_PRIVILEGE } from "../support/errors.js";

export function auditSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`audit trail and guardrails on ${backend.name}`, () => {
    let connection: Connection;
    let db: Database;
    const run = (
      email: string | null,
      phoneNumber: string | null,
      requestId = "req",
      guardrails?: Guardrails,
    ) =>
      identify(
        db,
        { email, phoneNumber },
        { lockTimeoutMs: 5_000, requestId, ...(guardrails ? { guardrails } : {}) },
      );
    const events = () => db.select().from(identityEvents).orderBy(asc(identityEvents.id));

    beforeAll(async () => {
      connection = await backend.open();
      db = connection.db;
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    describe("audit trail", () => {
      it("records a new primary with the request id", async () => {
        const { customer } = await run("a@x.io", "1", "req-1");
        expect(await events()).toMatchObject([
          {
            requestId: "req-1",
            kind: "created_primary",
            contactId: customer.primaryContactId,
            oldPrimaryId: null,
            newPrimaryId: customer.primaryContactId,
          },
        ]);
      });

      it("records a new secondary with its primary", async () => {
        const { customer } = await run("a@x.io", "1");
        const second = await run("b@x.io", "1", "req-2");
        expect((await events())[1]).toMatchObject({
          requestId: "req-2",
          kind: "created_secondary",
          contactId: second.customer.secondaryContactIds[0],
          newPrimaryId: customer.primaryContactId,
        });
      });

      it("records every contact a merge moves, with its old and its new primary", async () => {
        const older = (await run("a@x.io", "1")).customer.primaryContactId;
        const newer = (await run("b@x.io", "2")).customer.primaryContactId;
        const under = (await run("c@x.io", "2")).customer.secondaryContactIds[0];
        await run("a@x.io", "2", "req-merge");
        const merge = (await events()).filter((e) => e.requestId === "req-merge");
        expect(merge.map((e) => [e.kind, e.contactId, e.oldPrimaryId, e.newPrimaryId])).toEqual([
          ["relinked", newer, newer, older],
          ["relinked", under, newer, older],
        ]);
      });

      it("records nothing for a request that changes nothing", async () => {
        await run("a@x.io", "1");
        const before = await events();
        await run("a@x.io", null, "req-lookup");
        await run(null, "1", "req-lookup");
        expect(await events()).toEqual(before);
      });

      it("refuses to update or delete an event", async () => {
        await run("a@x.io", "1");
        const refusal = { code: INSUFFICIENT_PRIVILEGE, message: "identity_events is append-only" };
        const update = await failureOf(
          db.execute(sql`update identity_events set request_id = 'forged'`),
        );
        expect(databaseError(update)).toEqual(refusal);
        const deletion = await failureOf(db.execute(sql`delete from identity_events`));
        expect(databaseError(deletion)).toEqual(refusal);
        expect(await events()).toMatchObject([{ requestId: "req" }]);
      });
    });

    describe("junk values", () => {
      const junk: Guardrails = { junkEmails: ["test@test.com"], junkPhonePatterns: ["^0+$"] };

      it("stores a junk email but never links two customers through it", async () => {
        const first = await run("test@test.com", "111", "r", junk);
        const second = await run("test@test.com", "222", "r", junk);
        expect(second.outcome).toBe("created");
        expect(second.customer.primaryContactId).not.toBe(first.customer.primaryContactId);
        expect(second.customer.emails).toEqual(["test@test.com"]);
      });

      it("never links through a phone number that matches a junk pattern", async () => {
        await run("a@x.io", "0000000000", "r", junk);
        const other = await run("b@x.io", "0000000000", "r", junk);
        expect(other.outcome).toBe("created");
        expect(other.customer.emails).toEqual(["b@x.io"]);
      });

      it("adds a junk email to the customer a real phone number finds", async () => {
        const customer = await run("real@x.io", "555", "r", junk);
        const result = await run("test@test.com", "555", "r", junk);
        expect(result.outcome).toBe("added_secondary");
        expect(result.customer.primaryContactId).toBe(customer.customer.primaryContactId);
        expect(result.customer.emails).toEqual(["real@x.io", "test@test.com"]);
      });

      it("answers a request made only of junk with the contact holding exactly those values", async () => {
        const first = await run("test@test.com", "000", "r", junk);
        const again = await run("test@test.com", "000", "r", junk);
        expect(again.outcome).toBe("unchanged");
        expect(again.customer.primaryContactId).toBe(first.customer.primaryContactId);
        expect(await allContacts(db)).toHaveLength(1);
      });

      it("keeps the invariants with junk values spread over several customers", async () => {
        await run("test@test.com", "1", "r", junk);
        await run("test@test.com", "2", "r", junk);
        await run("a@x.io", "0", "r", junk);
        await run("b@x.io", "0", "r", junk);
        expect(Object.values(await checkInvariants(db, junk))).toEqual([0, 0, 0, 0]);
        expect((await checkInvariants(db)).identifierInTwoCustomers).toBe(2);
      });

      it("links through junk values when the guardrail is off", async () => {
        const first = await run("test@test.com", "111");
        const second = await run("test@test.com", "222");
        expect(second.customer.primaryContactId).toBe(first.customer.primaryContactId);
      });
    });

    describe("customer cap", () => {
      const cap: Guardrails = { maxContacts: 2 };

      // IDC01 answers 409 customer_too_large (lib/errors.ts; test/error-map.test.ts).
      it("refuses with IDC01 a secondary that would grow a customer past the cap, writing nothing", async () => {
        await run("a@x.io", "1", "r", cap);
        await run("b@x.io", "1", "r", cap);
        const before = await allContacts(db);
        const eventsBefore = await events();
        const error = await failureOf(run("c@x.io", "1", "r", cap));
        expect(sqlState(error)).toBe(SQLSTATE_CUSTOMER_TOO_LARGE);
        expect(await allContacts(db)).toEqual(before);
        expect(await events()).toEqual(eventsBefore);
      });

      it("refuses a merge whose result would exceed the cap", async () => {
        await run("a@x.io", "1", "r", cap);
        await run("b@x.io", "1", "r", cap);
        await run("c@x.io", "2", "r", cap);
        const error = await failureOf(run("a@x.io", "2", "r", cap));
        expect(sqlState(error)).toBe(SQLSTATE_CUSTOMER_TOO_LARGE);
        expect((await allContacts(db)).filter((c) => c.linkPrecedence === "primary")).toHaveLength(
          2,
        );
      });

      it("still answers lookups of a customer at the cap", async () => {
        await run("a@x.io", "1", "r", cap);
        await run("b@x.io", "1", "r", cap);
        const result = await run(null, "1", "r", cap);
        expect(result.outcome).toBe("unchanged");
        expect(result.customer.emails).toEqual(["a@x.io", "b@x.io"]);
      });
    });
  });
}
