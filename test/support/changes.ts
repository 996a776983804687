/**
 * A downstream consumer of the change feed, as the README's loop is: pages through
 * GET /identify/changes with `next`, applies each change to a map from contact to primary,
 * and is compared with the database's live contacts.
 */
import { sql } from "drizzle-orm";
import identify from "../../api/identify.js";
import { type Cursor, decodeCursor, encodeCursor } from "../../lib/changes.js";
import type { ChangesResponse } from "../../lib/contract.js";
import type { Database } from "../../lib/db/client.js";
import { queryRows } from "../../lib/db/query.js";

const CHANGES_URL = "http://localhost/identify/changes";

type Change = ChangesResponse["changes"][number];

/** GET /identify/changes with the given query parameters and headers. */
export function getChanges(
  params: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Response> {
  const query = new URLSearchParams(params).toString();
  return identify.fetch(new Request(`${CHANGES_URL}${query ? `?${query}` : ""}`, { headers }));
}

/** A page's body; fails unless the answer is 200. */
export async function pageOf(response: Response): Promise<ChangesResponse> {
  if (response.status !== 200) {
    throw new Error(`GET /identify/changes answered ${response.status}: ${await response.text()}`);
  }
  return (await response.json()) as ChangesResponse;
}

/** The cursor for `position` of the database the handler serves, which a page's next names. */
export async function cursorHere(position: Cursor["position"]): Promise<string> {
  const { next } = await pageOf(await getChanges());
  const here = decodeCursor(next);
  if (!here || here === "outdated") throw new Error("the feed handed out a cursor it cannot read");
  return encodeCursor({ database: here.database, position });
}

/** A consumer: its mirror, its cursor, and every change it has applied, in order. */
export class Consumer {
  readonly mirror = new Map<number, number>();
  readonly applied: Change[] = [];
  cursor: string | undefined;
  pages = 0;

  constructor(
    private readonly limit = 1000,
    private readonly headers: Record<string, string> = {},
  ) {}

  /** Reads one page and applies it; resolves to how many changes it held. */
  async readPage(): Promise<number> {
    const params: Record<string, string> = { limit: String(this.limit) };
    if (this.cursor !== undefined) params.after = this.cursor;
    const page = await pageOf(await getChanges(params, this.headers));
    for (const change of page.changes) {
      if (change.primaryContactId === null) this.mirror.delete(change.contactId);
      else this.mirror.set(change.contactId, change.primaryContactId);
      this.applied.push(change);
    }
    this.cursor = page.next;
    this.pages++;
    return page.changes.length;
  }

  /** Reads pages until one comes back empty: the end of the feed as it stands. */
  async readToEnd(): Promise<void> {
    while ((await this.readPage()) > 0) {}
  }
}

/** What an exact mirror holds: each live contact and its primary, as the table says. */
export async function liveContacts(db: Database): Promise<Map<number, number>> {
  const rows = await queryRows<{ id: number; primary_id: number }>(
    db,
    sql`select id, coalesce(linked_id, id) as primary_id from contacts where deleted_at is null`,
  );
  return new Map(rows.map((row) => [row.id, row.primary_id]));
}

/** A map's entries sorted by key, for a readable comparison. */
export const sorted = (map: Map<number, number>) => [...map].sort(([a], [b]) => a - b);
