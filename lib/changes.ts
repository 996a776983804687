/**
 * The change feed, GET /identify/changes: every change to which customer a contact belongs
 * (created, relinked, soft-deleted, erased), in an order downstream systems can page through
 * with an opaque cursor and mirror exactly. Stores keep primaryContactId in their own
 * systems; a merge makes the newer customer's ids stale, and an erasure must reach every copy
 * (GDPR art. 17(2), 19). One read-only statement per page, `identify_changes`
 * (drizzle/functions/identify_changes.sql), which explains why the order can be trusted and
 * why a cursor names the database that handed it out: positions are the server's transaction
 * ids, which another database, or a copy, shares.
 */
import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import type { ChangeKind, ChangesResponse } from "./contract.js";
import type { Database } from "./db/client.js";
import { queryRows } from "./db/query.js";
import { type InputIssue, invalidCursor, invalidQuery } from "./errors.js";

/** Default and largest page size. */
export const CHANGES_LIMIT_DEFAULT = 100;
export const CHANGES_LIMIT_MAX = 1000;

/**
 * A place in the feed: the last change read. `source` 0 is an identity_events row, 1 an
 * erasures row, which names several contacts: `item` is the contact's place in its list
 * (1 for the first), 0 for an event.
 */
interface Position {
  transactionId: bigint;
  source: 0 | 1;
  id: bigint;
  item: number;
}

/**
 * What a cursor says: a position, and the database whose position it is (identify_changes'
 * database_id), since positions are transaction ids, which every database of a server, and
 * every copy of a database, shares.
 */
export interface Cursor {
  database: string;
  position: Position;
}

/** Before the first change. */
const BEGINNING: Position = { transactionId: 0n, source: 0, id: 0n, item: 0 };

const MAX_BIGINT = 9_223_372_036_854_775_807n;
const MAX_INTEGER = 2_147_483_647;
const CURSOR_VERSION = "2";
const SOURCE_LETTERS = ["e", "x"] as const;
/** Non-negative decimal without leading zeros. */
const DECIMAL = "(0|[1-9]\\d{0,18})";
const PAYLOAD = new RegExp(
  `^${CURSOR_VERSION}\\.([0-9a-f]{16})\\.${DECIMAL}\\.([ex])\\.${DECIMAL}\\.${DECIMAL}$`,
);
/** Version 1, which named no database: still recognized, to be refused for what it is. */
const PAYLOAD_V1 = new RegExp(`^1\\.${DECIMAL}\\.([ex])\\.${DECIMAL}\\.${DECIMAL}$`);
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Eight hex digits of the payload's SHA-256: a cursor cut short or altered fails it. */
const checksum = (payload: string) =>
  createHash("sha256").update(payload).digest("hex").slice(0, 8);

/** The opaque cursor: base64url of a versioned, checksummed string. */
export function encodeCursor({ database, position }: Cursor): string {
  const payload = [
    CURSOR_VERSION,
    database,
    position.transactionId,
    SOURCE_LETTERS[position.source],
    position.id,
    position.item,
  ].join(".");
  return Buffer.from(`${payload}.${checksum(payload)}`).toString("base64url");
}

/**
 * What a cursor says; "outdated" for a version 1 cursor, which names no database; null unless
 * it is exactly what encodeCursor (or version 1's) makes.
 */
export function decodeCursor(cursor: string): Cursor | "outdated" | null {
  if (cursor.length > 200 || !BASE64URL.test(cursor)) return null;
  const text = Buffer.from(cursor, "base64url").toString("latin1");
  // Base64 has several spellings of some byte strings; only encodeCursor's is accepted.
  if (Buffer.from(text, "latin1").toString("base64url") !== cursor) return null;
  const dot = text.lastIndexOf(".");
  const payload = text.slice(0, dot);
  if (dot < 0 || text.slice(dot + 1) !== checksum(payload)) return null;
  if (PAYLOAD_V1.test(payload)) return "outdated";
  const match = PAYLOAD.exec(payload);
  if (!match) return null;
  const [, database = "", transactionId = "", letter, id = "", item = ""] = match;
  const position: Position = {
    transactionId: BigInt(transactionId),
    source: letter === "x" ? 1 : 0,
    id: BigInt(id),
    item: Number(item),
  };
  if (
    position.transactionId > MAX_BIGINT ||
    position.id > MAX_BIGINT ||
    position.item > MAX_INTEGER
  )
    return null;
  return { database, position };
}

/** What a page is asked for: `after` is null at the beginning. */
interface ChangesQuery {
  after: Cursor | null;
  limit: number;
}

/**
 * Reads `after` and `limit` from a request's query string. Other parameters are ignored.
 * @throws HttpError 400 invalid_cursor for a malformed or version 1 `after`, invalid_request for a
 * bad `limit`.
 */
export function parseChangesQuery(params: URLSearchParams): ChangesQuery {
  const issues: InputIssue[] = [];
  const limits = params.getAll("limit");
  let limit = CHANGES_LIMIT_DEFAULT;
  if (limits.length > 0) {
    const [text = ""] = limits;
    const value = /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN;
    if (limits.length > 1 || !(value >= 1 && value <= CHANGES_LIMIT_MAX)) {
      issues.push({
        path: "limit",
        message: `limit must be a whole number from 1 to ${CHANGES_LIMIT_MAX}, given once`,
      });
    } else {
      limit = value;
    }
  }
  if (issues.length > 0) throw invalidQuery(issues);

  const afters = params.getAll("after");
  if (afters.length === 0) return { after: null, limit };
  const after = afters.length === 1 ? decodeCursor(afters[0] ?? "") : null;
  if (after === "outdated") throw invalidCursor("outdated");
  if (!after) throw invalidCursor("malformed");
  return { after, limit };
}

/** A row of identify_changes; bigints arrive as strings or bigints depending on the driver. */
interface ChangeRow {
  database_id: string;
  snapshot_xmax: string | number | bigint;
  transaction_id: string | number | bigint | null;
  source: number | null;
  id: string | number | bigint | null;
  item: number | null;
  contact_id: number | null;
  primary_contact_id: number | null;
  kind: ChangeKind | null;
  occurred_at: Date | string | null;
}

/**
 * One page: the changes after `query.after`, oldest first, at most `query.limit`, and the
 * cursor of the last one (`after` itself when there are none, so an empty page hands back the
 * cursor it was given). One read-only statement; no locks.
 * @throws HttpError 400 invalid_cursor when `after` is another database's, or ahead of
 * anything handed out.
 */
export async function readChanges(db: Database, query: ChangesQuery): Promise<ChangesResponse> {
  const { limit } = query;
  const after = query.after?.position ?? BEGINNING;
  const eventId = after.source === 0 ? after.id : MAX_BIGINT;
  const erasureId = after.source === 1 ? after.id : 0n;
  const erasureItem = after.source === 1 ? after.item : 0;
  const rows = await queryRows<ChangeRow>(
    db,
    sql`select database_id, snapshot_xmax, transaction_id, source, id, item, contact_id,
               primary_contact_id, kind, occurred_at
          from identify_changes(${String(after.transactionId)}::bigint, ${String(eventId)}::bigint,
                                ${String(erasureId)}::bigint, ${erasureItem}::integer,
                                ${limit}::integer)`,
  );
  const database = rows[0]?.database_id ?? "";
  if (query.after && query.after.database !== database) throw invalidCursor("elsewhere");
  // Every position handed out lies below its page's snapshot xmax, which only grows: a
  // position at or past it was never handed out by this database.
  if (after.transactionId >= BigInt(String(rows[0]?.snapshot_xmax ?? 0)))
    throw invalidCursor("unknown");

  const changes: ChangesResponse["changes"] = [];
  let last = after;
  for (const row of rows) {
    if (row.transaction_id === null || row.id === null || row.contact_id === null) continue;
    changes.push({
      contactId: row.contact_id,
      primaryContactId: row.primary_contact_id,
      kind: row.kind ?? "erased",
      at: new Date(row.occurred_at ?? 0).toISOString(),
    });
    last = {
      transactionId: BigInt(String(row.transaction_id)),
      source: row.source === 1 ? 1 : 0,
      id: BigInt(String(row.id)),
      item: row.item ?? 0,
    };
  }
  return { changes, next: encodeCursor({ database, position: last }) };
}
