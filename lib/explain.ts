/**
 * "Why are these two linked?": finds the customer an email, phone number or contact id
 * belongs to, and tells its story from the audit trail (identity_events) and the values
 * its contacts share. Read-only; `npm run explain` prints it.
 */
import { asc, sql } from "drizzle-orm";
import type { Database } from "./db/client.js";
import { queryRows, sqlArray } from "./db/query.js";
import { type Contact, contacts, type IdentityEvent, identityEvents } from "./db/schema.js";
import { optionsJsonb } from "./db/sql-contract.js";
import type { Guardrails } from "./guardrails.js";

/** What to explain: one normalized identifier, or a contact id. */
export type CustomerSelector = { email: string } | { phoneNumber: string } | { id: number };

/** A selector as the SQL functions take it: the one given, the others null. */
export function selectorArguments(selector: CustomerSelector): {
  email: string | null;
  phone: string | null;
  id: number | null;
} {
  return {
    email: "email" in selector ? selector.email : null,
    phone: "phoneNumber" in selector ? selector.phoneNumber : null,
    id: "id" in selector ? selector.id : null,
  };
}

interface Explanation {
  /** The customer's contacts, oldest (the primary) first. */
  contacts: Contact[];
  /** Every identity event of those contacts, in the order they happened. */
  events: IdentityEvent[];
  /** Pairs of contacts that share a value, which is what links them. */
  sharedValues: { a: number; b: number; kind: "email" | "phone"; value: string }[];
}

/** Explains the customer the selector identifies, or null when no live contact matches. */
export async function explainCustomer(
  db: Database,
  selector: CustomerSelector,
  guardrails: Guardrails = {},
): Promise<Explanation | null> {
  const { email, phone, id } = selectorArguments(selector);
  const seeds = sqlArray(id === null ? [] : [id], "integer");
  const [row] = await queryRows<{ ids: number[] }>(
    db,
    sql`select identify_customer_contact_ids(${email}::text, ${phone}::text, ${seeds}, ${optionsJsonb(guardrails)}) as ids`,
  );
  const ids = row?.ids ?? [];
  if (ids.length === 0) return null;

  const members = await db
    .select()
    .from(contacts)
    .where(sql`${contacts.id} = any(${sqlArray(ids, "integer")})`)
    .orderBy(asc(contacts.createdAt), asc(contacts.id));
  const events = await db
    .select()
    .from(identityEvents)
    .where(sql`${identityEvents.contactId} = any(${sqlArray(ids, "integer")})`)
    .orderBy(asc(identityEvents.id));
  return { contacts: members, events, sharedValues: sharedValues(members) };
}

function sharedValues(members: Contact[]): Explanation["sharedValues"] {
  const pairs: Explanation["sharedValues"] = [];
  members.forEach((a, i) => {
    for (const b of members.slice(i + 1)) {
      if (a.email !== null && a.email === b.email) {
        pairs.push({ a: a.id, b: b.id, kind: "email", value: a.email });
      }
      if (a.phoneNumber !== null && a.phoneNumber === b.phoneNumber) {
        pairs.push({ a: a.id, b: b.id, kind: "phone", value: a.phoneNumber });
      }
    }
  });
  return pairs;
}

const day = (date: Date) =>
  date
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");

/**
 * How the events `npm run relink` writes are told from a request's (lib/relink.ts): their
 * request id starts with it. Request ids of POST /identify are UUIDs, an import's start with
 * "import-", an erasure's are ticket references, which never start so.
 */
export const RELINK_REQUEST_PREFIX = "relink-";

/**
 * A relink's move, said as a split or a join: a contact whose former primary is no longer in
 * its customer was split from it; one whose former primary is still there joined with it.
 */
function describeRelink(event: IdentityEvent, members: ReadonlySet<number>): string {
  const who = `contact ${event.contactId}`;
  const from = event.oldPrimaryId ?? "nothing";
  if (event.oldPrimaryId !== null && members.has(event.oldPrimaryId)) {
    return `${who} joined customer ${event.newPrimaryId} with customer ${from} by a relink`;
  }
  return event.newPrimaryId === event.contactId
    ? `${who} was split from customer ${from} by a relink, as the primary of its own customer`
    : `${who} was split from customer ${from} by a relink, into customer ${event.newPrimaryId}`;
}

/**
 * One sentence per event, e.g. "contact 27 became secondary of 11". `members`, the ids of the
 * customer the event is shown with, tells a relink's split from its join.
 */
export function describeEvent(
  event: IdentityEvent,
  members: ReadonlySet<number> = new Set(),
): string {
  const who = `contact ${event.contactId}`;
  if (event.kind === "relinked" && event.requestId.startsWith(RELINK_REQUEST_PREFIX)) {
    return describeRelink(event, members);
  }
  switch (event.kind) {
    case "created_primary":
      return `${who} was created as a new customer's primary`;
    case "created_secondary":
      return `${who} was created as a secondary of ${event.newPrimaryId}`;
    case "imported":
      return `${who} was imported from the old service`;
    case "relinked":
      return event.newPrimaryId === event.contactId
        ? `${who} became the primary (it was under ${event.oldPrimaryId ?? "nothing"})`
        : `${who} became secondary of ${event.newPrimaryId}${
            event.oldPrimaryId === event.contactId
              ? " (it was a primary)"
              : ` (it was under ${event.oldPrimaryId ?? "nothing"})`
          }`;
  }
}

/** The explanation as text for a terminal. */
export function formatExplanation(explanation: Explanation): string {
  const [primary] = explanation.contacts;
  const members = new Set(explanation.contacts.map((contact) => contact.id));
  const lines = [
    `Customer ${primary?.id} — ${explanation.contacts.length} contact(s)`,
    "",
    "Contacts (oldest first):",
    ...explanation.contacts.map(
      (c) =>
        `  ${String(c.id).padStart(6)}  ${c.linkPrecedence.padEnd(9)}  ${c.email ?? "-"}  ${c.phoneNumber ?? "-"}  created ${day(c.createdAt)}`,
    ),
    "",
    "Linked by shared values:",
    ...(explanation.sharedValues.length > 0
      ? explanation.sharedValues.map((s) => `  ${s.a} and ${s.b} share ${s.kind} ${s.value}`)
      : [
          "  (none: a single contact, or contacts a request joined by bringing one's email with another's phone; see History)",
        ]),
    "",
    "History:",
    ...(explanation.events.length > 0
      ? explanation.events.map(
          (e) => `  ${day(e.occurredAt)}  ${describeEvent(e, members)}, request ${e.requestId}`,
        )
      : ["  (no recorded events: the contacts predate the audit trail)"]),
  ];
  return lines.join("\n");
}
