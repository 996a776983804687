/**
 * `relink --all` with live traffic: a storm of concurrent requests (lookups, new secondaries,
 * new customers) on a customer of 300 strangers joined by a now-junk email, while the walk
 * splits it. Each customer is relinked in one statement under the locks requests take, so
 * the storm must end in exactly the customers a fresh replay links, with the invariants
 * holding and nothing left for a second relink. On the local PostgreSQL server, with real
 * parallel connections.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import { newRelinkRequestId, relinkAll } from "../lib/relink.js";
import { postgresBackend } from "./support/databases.js";
import { expectAsReplayed } from "./support/replay.js";

const backend = postgresBackend({ poolMax: 24 });
const JUNK = "test@test.com";
const GUARDRAILS: Guardrails = { junkEmails: [JUNK], maxContacts: 1000 };
const STRANGERS = 300;
const REQUESTS = 400;
const CONCURRENCY = 16;

const phone = (n: number) => String(5_550_300_000 + n);

describe.skipIf(!backend.available)("relink --all during a storm of requests", () => {
  let connection: Connection;

  beforeAll(async () => {
    connection = await backend.open();
    await connection.db.execute(sql`
      insert into contacts (email, phone_number, link_precedence, created_at)
      values (${JUNK}, ${phone(0)}, 'primary', now() - interval '1 day')`);
    await connection.db.execute(sql`
      insert into contacts (email, phone_number, link_precedence, linked_id, created_at)
      select ${JUNK}, (5550300000 + n)::text, 'secondary', 1, now() - interval '1 day' + n * interval '1 ms'
        from generate_series(1, ${STRANGERS - 1}) n`);
  });
  afterAll(() => backend.dispose());

  it("ends in exactly the customers a fresh replay links", async () => {
    const requests = Array.from({ length: REQUESTS }, (_, i) => {
      const kind = i % 3;
      if (kind === 0) return { email: JUNK, phoneNumber: phone(i % STRANGERS) };
      if (kind === 1) return { email: `shopper${i}@hv.edu`, phoneNumber: phone(i % STRANGERS) };
      return { email: JUNK, phoneNumber: phone(10_000 + i) };
    });
    const failures: unknown[] = [];
    const worker = async () => {
      for (let next = requests.shift(); next; next = requests.shift()) {
        await identify(connection.db, next, {
          lockTimeoutMs: 20_000,
          requestId: "storm",
          guardrails: GUARDRAILS,
        }).catch((error: unknown) => failures.push(error));
      }
    };
    const options = { requestId: newRelinkRequestId(), guardrails: GUARDRAILS };
    const [walk] = await Promise.all([
      relinkAll(connection.db, options, () => {}),
      ...Array.from({ length: CONCURRENCY }, worker),
    ]);
    expect(failures).toEqual([]);
    expect(walk.customersChanged).toBeGreaterThan(0);
    await expectAsReplayed(connection.db, GUARDRAILS);
    expect((await relinkAll(connection.db, options, () => {})).customersChanged).toBe(0);
  });
});
