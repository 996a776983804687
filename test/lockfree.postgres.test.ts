/**
 * Lookups take no lock a writer holds (drizzle/functions/identify_contact.sql, path A): a
 * merge, an erasure or an import in progress on another connection, its locks held open,
 * and a lookup of the same customer answers, as the customer stood before the writer. Each
 * lookup is given a lock timeout far shorter than the writer stays open, so one that waited
 * for any of its locks would fail with 55P03 instead of answering.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLegacyTable } from "../bench/legacy.js";
import type { Connection, Database } from "../lib/db/client.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import { identify } from "../lib/identify.js";
import { importFromLegacy } from "../lib/import.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  resetContacts,
  type TestDatabase,
} from "./support/databases.js";
import { databaseError, failureOf } from "./support/errors.js";

/** Short: a lookup that waited for a writer's lock would give up long before it ends. */
const LOOKUP_LOCK_TIMEOUT_MS = 200;

describe.skipIf(!postgresAvailable())("lookups while a writer holds its locks", () => {
  let database: TestDatabase;
  let connection: Connection;
  let writer: Connection;

  const request = (db: Database, email: string | null, phoneNumber: string | null) =>
    identify(
      db,
      { email, phoneNumber },
      { lockTimeoutMs: LOOKUP_LOCK_TIMEOUT_MS, requestId: "lockfree-test" },
    );

  beforeAll(async () => {
    database = await createPostgresDatabase();
    connection = await connect({ DATABASE_URL: database.url });
    writer = await connect({ DATABASE_URL: database.url });
  });
  afterAll(async () => {
    await writer?.close();
    await connection?.close();
    await database?.drop();
  });
  beforeEach(() => resetContacts(connection));

  it("answers a lookup during a merge of its customer, as the customer stood before it", async () => {
    const doc = await request(connection.db, "doc@hillvalley.edu", "1955");
    const marty = await request(connection.db, "marty@hillvalley.edu", "1985");
    const during = await writer.db.transaction(async (tx) => {
      await tx.execute(sql`select * from identify_contact('doc@hillvalley.edu', '1985',
                             '{"requestId": "merge-held-open", "lockTimeoutMs": 5000}')`);
      return request(connection.db, "marty@hillvalley.edu", "1985");
    });
    expect(during.customer).toEqual(marty.customer);
    const after = await request(connection.db, "marty@hillvalley.edu", "1985");
    expect(after.customer.primaryContactId).toBe(doc.customer.primaryContactId);
  });

  it("answers a lookup during an erasure of its customer, as the customer stood before it", async () => {
    const doc = await request(connection.db, "doc@hillvalley.edu", "1955");
    const during = await writer.db.transaction(async (tx) => {
      await tx.execute(sql`select * from identify_forget('doc@hillvalley.edu', null, null,
                             '{"requestId": "T-1", "lockTimeoutMs": 5000}')`);
      return request(connection.db, "doc@hillvalley.edu", null);
    });
    expect(during.customer).toEqual(doc.customer);
  });

  it("requires the lock timeout from its caller, which holds its one default", async () => {
    const failure = await failureOf(
      queryRows(
        connection.db,
        sql`select * from identify_contact('doc@hillvalley.edu', null, '{}')`,
      ),
    );
    expect(databaseError(failure)?.code).toBe("22023");
  });

  describe("during an import", () => {
    let source: TestDatabase;
    let legacy: Connection;
    beforeAll(async () => {
      source = await createPostgresDatabase({ migrated: false });
      legacy = await connect({ DATABASE_URL: source.url });
      await createLegacyTable(legacy.db);
      await legacy.db.execute(sql`insert into Contact (id, phoneNumber, email, linkPrecedence)
        values (1000, '1955', 'emmett@hillvalley.edu', 'primary')`);
    });
    afterAll(async () => {
      await legacy?.close();
      await source?.drop();
    });

    /** Whether a transaction holds a table lock on contacts that holds back writers. */
    const contactsLockedAgainstWriters = async () =>
      (
        await queryRows<{ held: boolean }>(
          connection.db,
          sql`select exists (select from pg_locks
                              where relation = 'contacts'::regclass and granted
                                and mode in ('ExclusiveLock', 'AccessExclusiveLock')) as held`,
        )
      )[0]?.held;

    it("answers lookups of existing customers and holds back writers until it commits", async () => {
      const doc = await request(connection.db, "doc@hillvalley.edu", "1955");
      // The import stops at its first write of identity_events, after it locked contacts,
      // until this transaction lets it go.
      const held = await writer.db.transaction(async (tx) => {
        await tx.execute(sql`lock table identity_events in share mode`);
        const importing = importFromLegacy(connection.db, legacy.db, { requestId: "import-1" });
        while (!(await contactsLockedAgainstWriters())) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const lookup = await request(connection.db, "doc@hillvalley.edu", "1955");
        const write = await failureOf(request(connection.db, "biff@hillvalley.edu", "1955"));
        return { lookup, write, importing };
      });
      expect(held.lookup.customer).toEqual(doc.customer);
      expect(databaseError(held.write)?.code).toBe("55P03");
      await held.importing;
      const after = await request(connection.db, "doc@hillvalley.edu", "1955");
      expect(after.customer.emails.sort()).toEqual(["doc@hillvalley.edu", "emmett@hillvalley.edu"]);
      expect(violationCount(await checkInvariants(connection.db))).toBe(0);
    });
  });
});
