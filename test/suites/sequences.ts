/**
 * Random sequences of requests held to a model of the rules (README, "The rules"): a
 * request joins every customer holding its email or phone into one, whose primary is its
 * oldest contact, and adds one contact when it brings a value that customer lacks. Values come from small pools, so a sequence creates, extends, merges and, most
 * of all, looks up: every response, from the lock-free read or the locked path alike, must
 * be the model's.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../../lib/db/client.js";
import { checkInvariants, violationCount } from "../../lib/db/invariants.js";
import { identify } from "../../lib/identify.js";
import { type Backend, resetContacts } from "../support/databases.js";

const SEQUENCES = 4;
const REQUESTS = 60;
const EMAILS = ["a@seq.test", "b@seq.test", "c@seq.test", "d@seq.test", "e@seq.test", "f@seq.test"];
const PHONES = ["101", "102", "103", "104", "105", "106"];

interface ModelContact {
  id: number;
  email: string | null;
  phone: string | null;
  /** Which customer it belongs to: a merge moves every contact of one to the other. */
  customer: number;
}

/** The rules, on contacts kept in creation order (ids count from 1, as the table's do). */
class Model {
  readonly contacts: ModelContact[] = [];

  request(email: string | null, phone: string | null) {
    const matched = this.contacts.filter(
      (c) => (email !== null && c.email === email) || (phone !== null && c.phone === phone),
    );
    const reached = new Set(matched.map((c) => c.customer));
    // The merged customer takes the oldest one's number, as it keeps the oldest primary.
    const customer = Math.min(...reached, this.contacts.length + 1);
    for (const c of this.contacts) if (reached.has(c.customer)) c.customer = customer;
    const members = () => this.contacts.filter((c) => c.customer === customer);
    const lacks =
      (email !== null && !members().some((c) => c.email === email)) ||
      (phone !== null && !members().some((c) => c.phone === phone));
    let outcome = reached.size > 1 ? "merged" : "unchanged";
    if (lacks) {
      this.contacts.push({ id: this.contacts.length + 1, email, phone, customer });
      outcome = matched.length ? "added_secondary" : "created";
    }
    const answer = members();
    const distinct = (values: (string | null)[]) => [
      ...new Set(values.filter((v): v is string => v !== null)),
    ];
    return {
      outcome,
      customer: {
        primaryContactId: answer[0]?.id,
        emails: distinct(answer.map((c) => c.email)),
        phoneNumbers: distinct(answer.map((c) => c.phone)),
        secondaryContactIds: answer.slice(1).map((c) => c.id),
      },
    };
  }
}

const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T;

export function sequencesSuite(backend: Backend) {
  describe.skipIf(!backend.available)(`random sequences on ${backend.name}`, () => {
    let connection: Connection;
    beforeAll(async () => {
      connection = await backend.open();
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(connection));

    it.each(Array.from({ length: SEQUENCES }, (_, i) => i + 1))(
      "answers sequence %i as the model does, request by request",
      async () => {
        const model = new Model();
        const sent: string[] = [];
        for (let n = 0; n < REQUESTS; n++) {
          const shape = Math.random();
          const email = shape < 0.2 ? null : pick(EMAILS);
          const phone = shape >= 0.2 && shape < 0.4 ? null : pick(PHONES);
          sent.push(`${email ?? "-"} ${phone ?? "-"}`);
          const answer = await identify(
            connection.db,
            { email, phoneNumber: phone },
            { lockTimeoutMs: 5_000, requestId: "sequence" },
          );
          // The requests so far, so that a failure can be replayed.
          expect({ sent, answer }).toEqual({ sent, answer: model.request(email, phone) });
        }
        expect(violationCount(await checkInvariants(connection.db))).toBe(0);
      },
    );
  });
}
