/**
 * Concurrent storms held to a model: lookups, new secondaries and merges on a few customers,
 * many at once, and every response checked to be linearizable. Lookups answer from one
 * lock-free read (drizzle/functions/identify_contact.sql, path A), so that is the property
 * to prove: each answer must be the customer as the model has it at some instant inside
 * its request's window, i.e. after some set of writes that includes every write answered
 * before the request was sent, and none sent after it was answered.
 * The model and the check: test/support/storm-model.ts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../../lib/db/client.js";
import { checkInvariants, violationCount } from "../../lib/db/invariants.js";
import { identify } from "../../lib/identify.js";
import { allContacts } from "../support/contacts.js";
import { type Backend, resetContacts } from "../support/databases.js";
import { type Answered, linearizable, type Operation } from "../support/storm-model.js";

const CUSTOMERS = 6;
const OPERATIONS = 240;
const WORKERS = 10;

const emailOf = (customer: number) => `c${customer}@storm.test`;
const phoneOf = (customer: number) => `${7000 + customer}`;

/** A fixed mix: mostly lookups, some new secondaries, a few merges. */
function randomOperation(n: number): Operation {
  const customer = Math.floor(Math.random() * CUSTOMERS);
  const roll = Math.random();
  if (roll < 0.7) {
    const shape = Math.floor(Math.random() * 3);
    return { kind: "lookup", customer, email: shape !== 1, phone: shape !== 0 };
  }
  if (roll < 0.88) return { kind: "add", customer, email: `added${n}@storm.test` };
  const other = (customer + 1 + Math.floor(Math.random() * (CUSTOMERS - 1))) % CUSTOMERS;
  return { kind: "merge", customer, other };
}

export function stormSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`concurrent storm on ${backend.name}`, () => {
    let connection: Connection;
    beforeAll(async () => {
      connection = await backend.open();
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    const send = async (operation: Operation): Promise<Answered> => {
      const email =
        operation.kind === "add"
          ? operation.email
          : operation.kind === "lookup" && !operation.email
            ? null
            : emailOf(operation.customer);
      const phone =
        operation.kind === "merge"
          ? phoneOf(operation.other)
          : operation.kind === "lookup" && !operation.phone
            ? null
            : phoneOf(operation.customer);
      const sent = performance.now();
      const { customer } = await identify(
        connection.db,
        { email, phoneNumber: phone },
        { lockTimeoutMs: 10_000, requestId: "storm" },
      );
      return {
        operation,
        sent,
        answered: performance.now(),
        contactIds: [customer.primaryContactId, ...customer.secondaryContactIds],
      };
    };

    it("answers every request as the model's customer at some instant inside its window", async () => {
      const initial: number[] = [];
      for (let i = 0; i < CUSTOMERS; i++) {
        initial.push(
          (await send({ kind: "lookup", customer: i, email: true, phone: true }))
            .contactIds[0] as number,
        );
      }
      const operations = Array.from({ length: OPERATIONS }, (_, n) => randomOperation(n));
      const responses: Answered[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          for (let n = next++; n < operations.length; n = next++) {
            responses.push(await send(operations[n] as Operation));
          }
        }),
      );

      const rows = await allContacts(connection.db);
      const addedId = new Map(rows.map((row) => [row.email ?? "", row.id]));
      const writes = responses.filter((r) => r.operation.kind !== "lookup");
      const wrong = responses.filter((r) => !linearizable(r, writes, initial, addedId));
      expect(wrong.map((r) => ({ ...r.operation, answered: r.contactIds }))).toEqual([]);
      // Each answer's primary is the oldest of its contacts, as every committed state has it.
      const age = new Map(rows.map((row) => [row.id, row.createdAt.getTime() * 1e6 + row.id]));
      for (const { contactIds } of responses) {
        const [primary, ...secondaries] = contactIds.map((id) => age.get(id) ?? 0);
        expect(secondaries.every((other) => other > (primary ?? 0))).toBe(true);
      }
      expect(responses.filter((r) => r.operation.kind === "lookup").length).toBeGreaterThan(100);
      expect(violationCount(await checkInvariants(connection.db))).toBe(0);
    });
  });
}
