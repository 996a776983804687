/**
 * What a fresh replay of every contact would link, as an invariant to check a database
 * against: each contact created in order, linked to every contact it shares an email or a
 * phone number with that is not junk under `guardrails` and is live at that moment, and
 * soft-deleted at its time (which unlinks nothing). So two contacts are one customer when a
 * chain of such shared values, each between contacts that were live at the same time,
 * connects them; the primary of each is its oldest live contact. Computed here in
 * TypeScript, independently of drizzle/functions/identify_relink.sql; only the junk test is
 * PostgreSQL's own (identify_is_junk), so that patterns mean what they mean there.
 */
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import type { Database } from "../../lib/db/client.js";
import { checkInvariants } from "../../lib/db/invariants.js";
import { queryRows } from "../../lib/db/query.js";
import { optionsJsonb } from "../../lib/db/sql-contract.js";
import type { Guardrails } from "../../lib/guardrails.js";
import { liveContacts, sorted } from "./changes.js";

interface Row {
  id: number;
  email: string | null;
  phone: string | null;
  born: number;
  died: number | null;
  email_links: boolean;
  phone_links: boolean;
}

/** Each live contact's primary as the replay links them. */
export async function replayedPrimaries(
  db: Database,
  guardrails: Guardrails,
): Promise<Map<number, number>> {
  const options = optionsJsonb(guardrails);
  const rows = await queryRows<Row>(
    db,
    sql`select id, email, phone_number as phone,
               extract(epoch from created_at)::float8 as born,
               extract(epoch from deleted_at)::float8 as died,
               email is not null and not identify_is_junk(email, identify_junk_list(${options}, 'junkEmails'),
                                                          identify_junk_list(${options}, 'junkEmailPatterns')) as email_links,
               phone_number is not null and not identify_is_junk(phone_number, identify_junk_list(${options}, 'junkPhones'),
                                                                 identify_junk_list(${options}, 'junkPhonePatterns')) as phone_links
          from contacts order by created_at, id`,
  );
  const parent = rows.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] as number;
    return i;
  };
  const alive = (a: Row, b: Row) =>
    Math.max(a.born, b.born) < Math.min(a.died ?? Infinity, b.died ?? Infinity);
  rows.forEach((a, i) => {
    rows.forEach((b, j) => {
      if (j <= i || !alive(a, b)) return;
      const shareEmail = a.email_links && a.email === b.email;
      const sharePhone = a.phone_links && a.phone === b.phone;
      if (!shareEmail && !sharePhone) return;
      const [x, y] = [root(i), root(j)].sort((m, n) => m - n) as [number, number];
      parent[y] = x;
    });
  });
  // Rows are in age order, so the first live row of a component is its primary.
  const primaryOf = new Map<number, number>();
  const primaries = new Map<number, number>();
  rows.forEach((row, i) => {
    if (row.died !== null) return;
    const component = root(i);
    if (!primaryOf.has(component)) primaryOf.set(component, row.id);
    primaries.set(row.id, primaryOf.get(component) as number);
  });
  return primaries;
}

/**
 * Fails unless every live contact has the primary the replay gives it, and the table's
 * invariants (lib/db/invariants.ts) hold under `guardrails`.
 */
export async function expectAsReplayed(db: Database, guardrails: Guardrails): Promise<void> {
  expect(sorted(await liveContacts(db))).toEqual(sorted(await replayedPrimaries(db, guardrails)));
  expect(await checkInvariants(db, guardrails)).toEqual({
    primaryNotOldest: 0,
    secondaryNotOnLivePrimary: 0,
    identifierInTwoCustomers: 0,
    duplicateRows: 0,
  });
}
