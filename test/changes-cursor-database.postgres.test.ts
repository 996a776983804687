/**
 * A change-feed cursor belongs to the database that handed it out. Positions are the server's
 * transaction ids, so a cursor read by another database of the same server, or by a
 * CREATE DATABASE … TEMPLATE copy, would pass over that database's own earlier changes; each
 * must refuse it with 400 invalid_cursor, while the database that handed it out reads on.
 * Database A is the one the handler serves; the others are read through lib/changes.ts.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterEach, describe, expect, it } from "vitest";
import { parseChangesQuery, readChanges } from "../lib/changes.js";
import type { Database } from "../lib/db/client.js";
import { getChanges, pageOf } from "./support/changes.js";
import {
  ADMIN_URL,
  connect,
  createPostgresDatabase,
  servedDatabase,
  type TestDatabase,
} from "./support/databases.js";
import { postIdentify } from "./support/http.js";

const served = servedDatabase("postgres");

/** What each test made beyond the served database, closed and dropped after it. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A database of the test's own on the served database's server: a migrated copy. */
async function anotherDatabase(): Promise<TestDatabase> {
  const database = await createPostgresDatabase();
  cleanups.push(database.drop);
  return database;
}

/** Runs `work` on `url`'s database, with a connection of its own. */
async function using<T>(url: string, work: (db: Database) => Promise<T>): Promise<T> {
  const connection = await connect({ DATABASE_URL: url });
  try {
    return await work(connection.db);
  } finally {
    await connection.close();
  }
}

/** A CREATE DATABASE … TEMPLATE copy of `original`, dropped after the test. */
async function templateCopy(original: TestDatabase): Promise<string> {
  const name = `identify_test_${randomBytes(6).toString("hex")}`;
  const source = new URL(original.url).pathname.slice(1);
  await using(ADMIN_URL, (admin) =>
    admin.execute(sql.raw(`create database ${name} template ${source}`)),
  );
  cleanups.push(() =>
    using(ADMIN_URL, (admin) => admin.execute(sql.raw(`drop database ${name} with (force)`))),
  );
  const url = new URL(original.url);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A change in the database `db` reaches, in a transaction of its own: a new contact. */
const write = (db: Database, email: string) =>
  db.execute(sql`select * from identify_contact(${email}, null, '{"lockTimeoutMs": 5000}'::jsonb)`);

/** A page of `db`'s feed after `after` (the beginning without it), as the handler reads one. */
const page = (db: Database, after?: string) =>
  readChanges(db, parseChangesQuery(new URLSearchParams(after ? { after } : {})));

/** The next of `db`'s feed read to its end. */
async function endOf(db: Database): Promise<string> {
  let { changes, next } = await page(db);
  while (changes.length > 0) ({ changes, next } = await page(db, next));
  return next;
}

describe.skipIf(!served.available)("a change-feed cursor on another database, on postgres", () => {
  it("answers 400 invalid_cursor to a cursor another database on the same server handed out", async () => {
    // A's change takes its transaction id before B's: B's cursor is past it.
    expect((await postIdentify({ email: "a@x.io" })).status).toBe(200);
    const cursor = await using((await anotherDatabase()).url, async (b) => {
      await write(b, "b@x.io");
      return endOf(b);
    });
    const response = await getChanges({ after: cursor });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "invalid_cursor" } });
  });

  it("answers 400 invalid_cursor to a cursor of the database a template copy was made from", async () => {
    const original = await anotherDatabase();
    await using(original.url, (db) => write(db, "before-copy@x.io"));
    const copy = await templateCopy(original);
    // The copy changes first, then the original: the original's cursor is past the copy's
    // change.
    await using(copy, (db) => write(db, "in-copy@x.io"));
    const cursor = await using(original.url, async (db) => {
      await write(db, "in-original@x.io");
      return endOf(db);
    });
    await using(copy, (db) =>
      expect(page(db, cursor)).rejects.toMatchObject({ status: 400, code: "invalid_cursor" }),
    );
  });

  it("reads on from a cursor it handed out itself", async () => {
    expect((await postIdentify({ email: "first@x.io" })).status).toBe(200);
    const { next } = await pageOf(await getChanges({ limit: "1000" }));
    const later = await postIdentify({ email: "later@x.io" });
    const { contact } = (await later.json()) as { contact: { primaryContactId: number } };
    const { changes } = await pageOf(await getChanges({ after: next }));
    expect(changes).toEqual([expect.objectContaining({ contactId: contact.primaryContactId })]);
  });
});
