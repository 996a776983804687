/**
 * An erasure holds on every import path: after `npm run forget`, no row of the old service's
 * table that carries an erased email or phone number comes back, whether the import skipped
 * it before as a duplicate of a contact a request created, or never saw it. The erased-values
 * list (erased_values, a keyed hash per erased value) is what the import consults; these
 * tests run the story of issue 22: a request creates alice, the import skips the legacy row
 * holding the same values, forget erases alice, and the import runs again.
 */
import { createHash, createHmac } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection, Database } from "../lib/db/client.js";
import { queryRows } from "../lib/db/query.js";
import { forgetCustomer } from "../lib/forget.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import { type ImportReport, importFromLegacy } from "../lib/import.js";
import { allContacts } from "./support/contacts.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";

const ALICE = { email: "alice@example.com", phoneNumber: "5550001" };
const JUNK = "test@test.com";
const GUARDRAILS: Guardrails = { junkEmails: [JUNK] };

/** Inserts rows into the old service's table, in its unquoted shape. */
async function legacyRows(
  db: Database,
  rows: [id: number, phone: string | null, email: string | null][],
): Promise<void> {
  for (const [id, phone, email] of rows) {
    await db.execute(sql`insert into contact (id, phonenumber, email, linkprecedence, createdat, updatedat)
      values (${id}, ${phone}, ${email}, 'primary', now(), now())`);
  }
}

describe.skipIf(!postgresAvailable())(
  "importing after an erasure of a customer a request created",
  () => {
    let sourceDatabase: TestDatabase;
    let targetDatabase: TestDatabase;
    let source: Connection;
    let target: Connection;
    let first: ImportReport;
    let second: ImportReport;

    beforeAll(async () => {
      sourceDatabase = await createPostgresDatabase({ migrated: false });
      targetDatabase = await createPostgresDatabase({ migrated: true });
      source = await connect({ DATABASE_URL: sourceDatabase.url });
      target = await connect({ DATABASE_URL: targetDatabase.url });
      await source.db.execute(sql`create table contact (
      id serial primary key, phonenumber varchar, email varchar, linkedid int,
      linkprecedence varchar, createdat timestamp not null, updatedat timestamp not null,
      deletedat timestamp)`);
      // Row 100 holds alice's values, as the old service stored them.
      await legacyRows(source.db, [
        [100, ALICE.phoneNumber, ALICE.email],
        [101, "5550002", "bob@example.com"],
      ]);
      const request = { requestId: "test", lockTimeoutMs: 5_000, guardrails: GUARDRAILS };
      // POST alice creates contact 1; a second request adds a secondary with a junk email.
      await identify(target.db, ALICE, request);
      await identify(target.db, { email: JUNK, phoneNumber: ALICE.phoneNumber }, request);
      first = await importFromLegacy(target.db, source.db, { guardrails: GUARDRAILS });
      await forgetCustomer(
        target.db,
        { email: ALICE.email },
        { requestId: "PRIV-1", guardrails: GUARDRAILS },
      );
      // Rows the import never saw: alice's email, alice's phone (soft-deleted), and a stranger
      // who typed the junk email alice's customer also held.
      await legacyRows(source.db, [
        [102, "5559999", ALICE.email],
        [103, ALICE.phoneNumber, "alice.new@example.com"],
        [104, "5557777", JUNK],
      ]);
      await source.db.execute(sql`update contact set deletedat = now() where id = 103`);
      second = await importFromLegacy(target.db, source.db, { guardrails: GUARDRAILS });
    });
    afterAll(async () => {
      await source?.close();
      await target?.close();
      await sourceDatabase?.drop();
      await targetDatabase?.drop();
    });

    it("skipped alice's legacy row as a duplicate of the contact the request created", () => {
      expect(first).toMatchObject({ imported: 1, skippedDuplicate: 1 });
    });

    it("brings back no contact holding an erased email or phone number", async () => {
      const values = (await allContacts(target.db)).flatMap((row) => [row.email, row.phoneNumber]);
      expect(values).not.toContain(ALICE.email);
      expect(values).not.toContain(ALICE.phoneNumber);
    });

    it("skips the row skipped before as a duplicate, and rows it never saw with an erased value", async () => {
      const ids = (await allContacts(target.db)).map((row) => row.id);
      for (const id of [100, 102, 103]) expect(ids).not.toContain(id);
    });

    it("imports a stranger's row whose only erased value is junk", async () => {
      const ids = (await allContacts(target.db)).map((row) => row.id);
      expect(ids).toContain(104);
    });

    it("counts the rows skipped for an erased value among the erased, and says nothing else of them", () => {
      expect(second).toMatchObject({
        rowsRead: 5,
        imported: 1, // 104
        alreadyPresent: 1, // 101
        skippedErased: 3, // 100, 102, 103
        skippedDuplicate: 0,
      });
    });

    it("keeps a keyed hash per erased value, never the value or its plain hash", async () => {
      const rows = await queryRows<{ kind: string; hash: string }>(
        target.db,
        sql`select kind, encode(value_hash, 'hex') as hash from erased_values order by kind`,
      );
      expect(rows.map((row) => row.kind)).toEqual(["email", "email", "phone"]);
      const plain = [ALICE.email, ALICE.phoneNumber, JUNK].flatMap((value) => [
        createHash("sha256").update(value).digest("hex"),
        Buffer.from(value).toString("hex"),
      ]);
      for (const { hash } of rows) {
        for (const other of plain) expect(hash).not.toContain(other);
      }
    });

    it("hashes with HMAC-SHA256 under the key erasure_key keeps as its inner pad", async () => {
      const [key] = await queryRows<{ inner: string }>(
        target.db,
        sql`select encode(inner_pad, 'hex') as inner from erasure_key`,
      );
      const secret = Buffer.from(key?.inner ?? "", "hex").map((byte) => byte ^ 0x36);
      const expected = createHmac("sha256", secret).update(`email:${ALICE.email}`).digest("hex");
      const [found] = await queryRows<{ count: number }>(
        target.db,
        sql`select count(*)::int as count from erased_values
             where kind = 'email' and value_hash = decode(${expected}, 'hex')`,
      );
      expect(found?.count).toBe(1);
    });
  },
);
