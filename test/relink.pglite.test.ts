/**
 * relink and suspects on the embedded database (PGlite, PostgreSQL 18), which `npm run
 * relink` and `npm run suspects` open when DATABASE_URL is unset: the three contacts
 * come apart as on PostgreSQL (test/relink.postgres.test.ts has the rest), a soft-deleted
 * bridge holds, and the suspects are counted.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import { newRelinkRequestId, relinkAll } from "../lib/relink.js";
import { findSuspects } from "../lib/suspects.js";
import { pgliteBackend } from "./support/databases.js";
import { expectAsReplayed } from "./support/replay.js";

const JUNK = "test@test.com";
const JUNK_LISTED: Guardrails = { junkEmails: [JUNK], maxContacts: 1000 };

describe("relink on the embedded database", () => {
  const backend = pgliteBackend();
  let connection: Connection;

  beforeAll(async () => {
    connection = await backend.open();
    const send = (email: string, phoneNumber: string) =>
      identify(
        connection.db,
        { email, phoneNumber },
        { lockTimeoutMs: 5000, requestId: "checkout" },
      );
    // A and B joined through the junk email, C through A's phone, D and E through a
    // contact deleted since.
    await send(JUNK, "5550100001");
    await send(JUNK, "5550100002");
    await send("clara@hv.edu", "5550100001");
    await send("dave@hv.edu", "5550100003");
    await send("dave@hv.edu", "5550100004");
    await send("erin@hv.edu", "5550100004");
    // Deleted after every contact was made, by the clock too: the embedded database's clock
    // may give the deletion the same instant as the last insert, and a contact made at the
    // very instant the bridge went was never live beside it.
    await connection.db.execute(sql`
      update contacts set deleted_at = (select max(created_at) from contacts) + interval '1 millisecond'
       where email = 'dave@hv.edu' and phone_number = '5550100004'`);
  });
  afterAll(() => backend.dispose());

  it("counts the suspects through the indexes", async () => {
    const { values } = await findSuspects(connection.db, 1, JUNK_LISTED);
    expect(values).toMatchObject([{ kind: "email", value: JUNK, contacts: 2, junk: true }]);
  });

  it("leaves what a fresh replay links, keeping the deleted bridge", async () => {
    const done = await relinkAll(
      connection.db,
      { requestId: newRelinkRequestId(), guardrails: JUNK_LISTED },
      () => {},
    );
    expect(done.customersChanged).toBe(1);
    await expectAsReplayed(connection.db, JUNK_LISTED);
    const [row] = await queryRows<{ n: number }>(
      connection.db,
      sql`select count(distinct coalesce(linked_id, id))::int as n from contacts where deleted_at is null`,
    );
    expect(row?.n).toBe(3);
  });
});
