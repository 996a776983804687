/**
 * Model-based: random sequences of requests (merges through shared values and through a
 * request's email and phone, junk values, soft deletions made by hand) under one set of
 * guardrails, then `relink --all` under another, and the invariant that must hold after
 * relinking: every customer is what a fresh replay of every contact under the new guardrails
 * links (test/support/replay.ts), the table's invariants hold (lib/db/invariants.ts), and a
 * second relink changes nothing. Each sequence's seed is in the test's name, so a failure can
 * be replayed.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import { newRelinkRequestId, relinkAll } from "../lib/relink.js";
import { postgresAvailable, postgresBackend, resetContacts } from "./support/databases.js";
import { expectAsReplayed } from "./support/replay.js";

const JUNK_EMAIL = "test@test.com";
const JUNK_PHONE = "0000000000";
const EMAILS = ["doc@hv.edu", "marty@hv.edu", "jen@hv.edu", "biff@hv.edu", JUNK_EMAIL];
const PHONES = ["5550100001", "5550100002", "5550100003", "5550100004", JUNK_PHONE];

/** The guardrails a sequence runs under, and those it is relinked under. */
const GUARDRAIL_SETS: Guardrails[] = [
  {},
  { junkEmails: [JUNK_EMAIL] },
  { junkPhonePatterns: ["^0+$"] },
  { junkEmails: [JUNK_EMAIL], junkPhones: [JUNK_PHONE] },
];

/** mulberry32: a small seeded generator, so a sequence can be run again. */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEQUENCES = 12;
const STEPS = 30;

describe.skipIf(!postgresAvailable())("relink, model-based", () => {
  const backend = postgresBackend();
  let connection: Connection;

  beforeAll(async () => {
    connection = await backend.open();
  });
  beforeEach(() => resetContacts(connection));
  afterAll(() => backend.dispose());

  const eventCount = async () =>
    (
      await queryRows<{ n: number }>(
        connection.db,
        sql`select count(*)::int as n from identity_events`,
      )
    )[0]?.n;

  it.each(Array.from({ length: SEQUENCES }, (_, i) => 1000 + i))(
    "leaves what a fresh replay links after a random sequence (seed %i)",
    async (seed) => {
      const random = generator(seed);
      const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
      const before = pick(GUARDRAIL_SETS);
      const after = pick(GUARDRAIL_SETS);
      for (let step = 0; step < STEPS; step++) {
        if (random() < 0.12) {
          await connection.db.execute(sql`
          update contacts set deleted_at = clock_timestamp()
           where id = (select id from contacts where deleted_at is null order by id
                        offset ${Math.floor(random() * 4)} limit 1)`);
          continue;
        }
        const email = random() < 0.8 ? pick(EMAILS) : null;
        const phoneNumber = email === null || random() < 0.8 ? pick(PHONES) : null;
        await identify(
          connection.db,
          { email, phoneNumber },
          { lockTimeoutMs: 5000, requestId: "model", guardrails: before },
        );
      }

      const options = { requestId: newRelinkRequestId(), guardrails: after };
      await relinkAll(connection.db, options, () => {});
      await expectAsReplayed(connection.db, after);
      const events = await eventCount();
      const again = await relinkAll(connection.db, options, () => {});
      expect(again.customersChanged).toBe(0);
      expect(await eventCount()).toBe(events);
    },
  );
});
