/**
 * The change feed, GET /identify/changes, over HTTP on each database the product runs on:
 * what a page holds, paging with next, the mirror a consumer builds, erasure, and the
 * errors. Requests are built with `new Request` and go through the exported handler.
 */

import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import identify from "../../api/identify.js";
import { decodeCursor, encodeCursor } from "../../lib/changes.js";
import { getConnection } from "../../lib/db/client.js";
import { forgetCustomer } from "../../lib/forget.js";
import {
  Consumer,
  cursorHere,
  getChanges,
  liveContacts,
  pageOf,
  sorted,
} from "../support/changes.js";
import { type Backend, resetContacts } from "../support/databases.js";
import { postIdentify } from "../support/http.js";

async function primaryOf(body: object): Promise<number> {
  const response = await postIdentify(body);
  expect(response.status).toBe(200);
  return ((await response.json()) as { contact: { primaryContactId: number } }).contact
    .primaryContactId;
}

async function errorOf(response: Response, status: number) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as {
    error: { code: string; message: string; requestId: string };
  };
  expect(body.error.requestId).toBe(response.headers.get("x-request-id"));
  return body.error;
}

async function errorCode(response: Response, status: number): Promise<string> {
  return (await errorOf(response, status)).code;
}

export function changesSuite(database: Backend) {
  describe.skipIf(!database.available)(`GET /identify/changes on ${database.name}`, () => {
    beforeEach(async () => resetContacts(await getConnection()));
    const db = async () => (await getConnection()).db;

    it("starts at the beginning without after and lists each new contact with its primary", async () => {
      const doc = await primaryOf({ email: "doc@x.io", phoneNumber: "1" });
      await primaryOf({ email: "marty@x.io", phoneNumber: "1" });
      const response = await getChanges();
      expect(response.headers.get("cache-control")).toBe("no-store");
      const page = await pageOf(response);
      expect(page.changes).toEqual([
        { contactId: doc, primaryContactId: doc, kind: "created", at: expect.any(String) },
        { contactId: doc + 1, primaryContactId: doc, kind: "created", at: expect.any(String) },
      ]);
      expect(new Date(page.changes[0]?.at ?? "").toISOString()).toBe(page.changes[0]?.at);
    });

    it("reports a merge as a relinked change of the newer primary", async () => {
      const george = await primaryOf({ email: "george@x.io", phoneNumber: "919191" });
      const biff = await primaryOf({ email: "biff@x.io", phoneNumber: "717171" });
      await primaryOf({ email: "george@x.io", phoneNumber: "717171" });
      const { changes } = await pageOf(await getChanges());
      expect(changes.at(-1)).toMatchObject({
        contactId: biff,
        primaryContactId: george,
        kind: "relinked",
      });
    });

    it("hands back the same next for an empty page", async () => {
      await primaryOf({ email: "doc@x.io" });
      const { next } = await pageOf(await getChanges());
      const empty = await pageOf(await getChanges({ after: next }));
      expect(empty).toEqual({ changes: [], next });
    });

    it("gives a first call on an empty feed a next that reads from the beginning", async () => {
      const first = await pageOf(await getChanges());
      expect(first.changes).toEqual([]);
      expect(await pageOf(await getChanges({ after: first.next }))).toEqual(first);
      const doc = await primaryOf({ email: "doc@x.io" });
      const { changes } = await pageOf(await getChanges({ after: first.next }));
      expect(changes.map((change) => change.contactId)).toEqual([doc]);
    });

    it("pages with next through exactly the changes one large page holds", async () => {
      for (let i = 0; i < 5; i++) await primaryOf({ email: `c${i}@x.io`, phoneNumber: `${i}` });
      await primaryOf({ email: "c0@x.io", phoneNumber: "1" });
      await primaryOf({ email: "c2@x.io", phoneNumber: "3" });
      const whole = (await pageOf(await getChanges({ limit: "1000" }))).changes;
      const paged = new Consumer(2);
      await paged.readToEnd();
      expect(paged.applied).toEqual(whole);
      // One page per two changes, then the empty page that says the end is reached.
      expect(paged.pages).toBe(Math.ceil(whole.length / 2) + 1);
    });

    it("returns at most limit changes and 100 by default", async () => {
      const { db: connection } = await getConnection();
      await connection.execute(sql`
        with inserted as (
          insert into contacts (email, link_precedence)
          select 'bulk' || n || '@x.io', 'primary' from generate_series(1, 120) n returning id)
        insert into identity_events (request_id, kind, contact_id, new_primary_id)
        select 'bulk', 'created_primary', id, id from inserted`);
      expect((await pageOf(await getChanges())).changes).toHaveLength(100);
      expect((await pageOf(await getChanges({ limit: "7" }))).changes).toHaveLength(7);
      expect((await pageOf(await getChanges({ limit: "1000" }))).changes).toHaveLength(120);
    });

    it("builds a mirror equal to the live contacts, a soft-deleted one left out", async () => {
      await primaryOf({ email: "a@x.io", phoneNumber: "1" });
      await primaryOf({ email: "b@x.io", phoneNumber: "2" });
      await primaryOf({ email: "c@x.io", phoneNumber: "1" });
      await primaryOf({ email: "b@x.io", phoneNumber: "1" });
      const consumer = new Consumer(3);
      await consumer.readToEnd();
      expect(sorted(consumer.mirror)).toEqual(sorted(await liveContacts(await db())));

      await (await db()).execute(
        sql`update contacts set deleted_at = now() where email = 'c@x.io'`,
      );
      await primaryOf({ email: "d@x.io", phoneNumber: "1" });
      const late = new Consumer(3);
      await late.readToEnd();
      expect(sorted(late.mirror)).toEqual(sorted(await liveContacts(await db())));
      expect(late.applied.filter((change) => change.kind === "deleted")).toHaveLength(1);
    });

    it("reports an imported contact that arrived soft-deleted as deleted, never in the mirror", async () => {
      await (await db()).execute(sql`
        with inserted as (
          insert into contacts (email, link_precedence, deleted_at)
          values ('gone@x.io', 'primary', now()) returning id)
        insert into identity_events (request_id, kind, contact_id, new_primary_id)
        select 'import:test', 'imported', id, id from inserted`);
      const consumer = new Consumer();
      await consumer.readToEnd();
      expect(consumer.applied).toEqual([
        {
          contactId: expect.any(Number),
          primaryContactId: null,
          kind: "deleted",
          at: expect.any(String),
        },
      ]);
      expect(consumer.mirror.size).toBe(0);
    });

    it("carries an erased change, ids only, for each contact of an erased customer", async () => {
      const doc = await primaryOf({ email: "doc@erase.test", phoneNumber: "5550001" });
      await primaryOf({ email: "marty@erase.test", phoneNumber: "5550001" });
      const biff = await primaryOf({ email: "biff@keep.test" });
      const consumer = new Consumer();
      await consumer.readToEnd();
      const erased = await forgetCustomer(
        await db(),
        { email: "doc@erase.test" },
        { requestId: "ticket-1", lockTimeoutMs: 10_000 },
      );
      const before = consumer.applied.length;
      await consumer.readToEnd();
      const after = consumer.applied.slice(before);
      expect(after).toEqual(
        erased.contactIds.map((contactId) => ({
          contactId,
          primaryContactId: null,
          kind: "erased",
          at: expect.any(String),
        })),
      );
      expect(JSON.stringify(after)).not.toMatch(/erase\.test|5550001/);
      expect(sorted(consumer.mirror)).toEqual([[biff, biff]]);
      expect(erased.contactIds).toContain(doc);
    });

    it("reads an erased customer as erased changes only when read after the erasure", async () => {
      await primaryOf({ email: "doc@erase.test", phoneNumber: "5550001" });
      await primaryOf({ email: "marty@erase.test", phoneNumber: "5550001" });
      await forgetCustomer(await db(), { phoneNumber: "5550001" }, { requestId: "ticket-2" });
      const consumer = new Consumer();
      await consumer.readToEnd();
      expect(consumer.applied.map((change) => change.kind)).toEqual(["erased", "erased"]);
      expect(consumer.mirror.size).toBe(0);
    });

    it.each([
      ["garbage", "not-a-cursor"],
      ["an empty string", ""],
      ["base64 of something else", Buffer.from("1.1.e.1.1.deadbeef").toString("base64url")],
      ["a cursor cut short", async () => (await cursorHere(start())).slice(0, -3)],
      ["a cursor with a character changed", async () => flipped(await cursorHere(start()))],
      ["a cursor with padding", async () => `${await cursorHere(start())}=`],
    ])("answers 400 invalid_cursor for %s", async (_name, cursor) => {
      const after = typeof cursor === "function" ? await cursor() : cursor;
      expect(await errorCode(await getChanges({ after }), 400)).toBe("invalid_cursor");
    });

    it("answers 400 invalid_cursor for two after parameters", async () => {
      const { next } = await pageOf(await getChanges());
      const response = await identify.fetch(
        new Request(`http://localhost/identify/changes?after=${next}&after=${next}`),
      );
      expect(await errorCode(response, 400)).toBe("invalid_cursor");
    });

    it("answers 400 invalid_cursor for a well-formed cursor ahead of anything handed out", async () => {
      const ahead = await cursorHere({ transactionId: 2n ** 62n, source: 0, id: 1n, item: 0 });
      expect(await errorCode(await getChanges({ after: ahead }), 400)).toBe("invalid_cursor");
    });

    it("answers 400 invalid_cursor for a cursor another database handed out, saying to start again", async () => {
      const elsewhere = encodeCursor({ database: "0123456789abcdef", position: start() });
      const error = await errorOf(await getChanges({ after: elsewhere }), 400);
      expect(error).toMatchObject({ code: "invalid_cursor" });
      expect(error.message).toMatch(/another database.*start again from the beginning/);
    });

    it("answers 400 invalid_cursor for a version 1 cursor, which names no database, saying to start again", async () => {
      const payload = "1.1.e.1.1";
      const checksum = createHash("sha256").update(payload).digest("hex").slice(0, 8);
      const outdated = Buffer.from(`${payload}.${checksum}`).toString("base64url");
      const error = await errorOf(await getChanges({ after: outdated }), 400);
      expect(error).toMatchObject({ code: "invalid_cursor" });
      expect(error.message).toMatch(/earlier version.*start again from the beginning/);
    });

    it("pages through an erasure a few contacts at a time, none skipped or repeated", async () => {
      for (let i = 0; i < 5; i++)
        await primaryOf({ email: `doc${i}@erase.test`, phoneNumber: "1" });
      await forgetCustomer(await db(), { phoneNumber: "1" }, { requestId: "ticket-3" });
      const after = await primaryOf({ email: "after@x.io" });
      const whole = (await pageOf(await getChanges({ limit: "1000" }))).changes;
      expect(whole.map((change) => change.kind)).toEqual([...Array(5).fill("erased"), "created"]);
      expect(whole.at(-1)?.contactId).toBe(after);
      const paged = new Consumer(2);
      await paged.readToEnd();
      expect(paged.applied).toEqual(whole);
    });

    it("reads a cursor past the end of an erasure's list as the end of that erasure", async () => {
      await primaryOf({ email: "doc@erase.test" });
      await forgetCustomer(await db(), { email: "doc@erase.test" }, { requestId: "ticket-4" });
      const after = await primaryOf({ email: "after@x.io" });
      const [erased, created] = (await pageOf(await getChanges())).changes;
      expect(erased?.kind).toBe("erased");
      const { next } = await pageOf(await getChanges({ limit: "1" }));
      const past = decodeCursor(next);
      if (!past || past === "outdated")
        throw new Error("the feed handed out a cursor it cannot read");
      past.position.item = 2_147_483_647;
      const { changes } = await pageOf(await getChanges({ after: encodeCursor(past) }));
      expect(changes).toEqual([created]);
      expect(created?.contactId).toBe(after);
    });

    it.each(["0", "1001", "-1", "1.5", "ten", ""])(
      "answers 400 invalid_request naming limit for limit=%s",
      async (limit) => {
        const response = await getChanges({ limit });
        expect(response.status).toBe(400);
        const body = (await response.json()) as { error: { code: string; issues: object[] } };
        expect(body.error.code).toBe("invalid_request");
        expect(body.error.issues).toEqual([{ path: "limit", message: expect.any(String) }]);
      },
    );

    it.each(["POST", "PUT", "DELETE"])("answers %s with 405 and Allow: GET", async (method) => {
      const response = await identify.fetch(
        new Request("http://localhost/identify/changes", { method }),
      );
      expect(response.headers.get("allow")).toBe("GET");
      expect(await errorCode(response, 405)).toBe("method_not_allowed");
    });

    it("serves /api/identify/changes and a trailing slash like /identify/changes", async () => {
      await primaryOf({ email: "doc@x.io" });
      const plain = await pageOf(await getChanges());
      for (const path of ["/api/identify/changes", "/identify/changes/"]) {
        const response = await identify.fetch(new Request(`http://localhost${path}`));
        expect(await pageOf(response), path).toEqual(plain);
      }
    });
  });
}

/** A position every database has passed: the beginning's neighbour. */
const start = () => ({ transactionId: 1n, source: 0 as const, id: 1n, item: 0 });

/** The cursor with one character replaced by another base64url character. */
function flipped(cursor: string): string {
  const at = Math.floor(cursor.length / 2);
  const replacement = cursor[at] === "A" ? "B" : "A";
  return cursor.slice(0, at) + replacement + cursor.slice(at + 1);
}
