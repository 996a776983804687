/**
 * `npm run suspects`: the values most likely to join strangers, so an operator knows what to
 * list in JUNK_EMAILS or JUNK_PHONE_NUMBERS before (or after) they merge hundreds of people:
 * the emails and phone numbers the most live contacts carry, each with its count and the
 * customer it sits in, marked when the deployment's guardrails already list it; and the
 * customers at or above 80% of the cap, which requests will soon refuse. It prints values,
 * as `npm run explain` does: it is an operator's tool, and a value is what gets listed.
 *
 * Its work is bounded by indexes, never a sequential scan of contacts: loose index scans over
 * the partial indexes on live emails, live phone numbers and live links, one probe per
 * distinct value with each value's holders counted in the index up to {@link COUNT_CAP}
 * (drizzle/functions/identify_relink_suspects.sql and identify_relink_large_customers.sql).
 */
import { sql } from "drizzle-orm";
import type { Database } from "./db/client.js";
import { queryRows } from "./db/query.js";
import { optionsJsonb } from "./db/sql-contract.js";
import type { Guardrails } from "./guardrails.js";

/** Counts stop here: the largest cap MAX_CONTACTS_PER_CUSTOMER allows. */
const COUNT_CAP = 100_000;

/** The share of the cap from which a customer is listed. */
const NEAR_CAP = 0.8;

/** A value that live contacts share. */
interface SuspectValue {
  kind: "email" | "phone";
  value: string;
  /** Live contacts carrying it, counted up to {@link COUNT_CAP}. */
  contacts: number;
  /** How many customers those contacts sit in, and the lowest of their primaries. */
  customers: number;
  customerId: number;
  /** Already junk under the deployment's guardrails. */
  junk: boolean;
}

export interface Suspects {
  values: SuspectValue[];
  /** The customers at or above {@link NEAR_CAP} of the cap, largest first. */
  largeCustomers: { customerId: number; contacts: number }[];
  /** The cap they were measured against; undefined when none is recorded. */
  cap: number | undefined;
}

/**
 * The `limit` values the most live contacts share, and the customers near the cap.
 * `guardrails` are the deployment's: they say which values are junk already, and the cap.
 */
export async function findSuspects(
  db: Database,
  limit: number,
  guardrails: Guardrails,
): Promise<Suspects> {
  const options = optionsJsonb(guardrails);
  const values = await queryRows<{
    kind: "email" | "phone";
    value: string;
    contacts: number;
    customers: number;
    customer_id: number;
    junk: boolean;
  }>(
    db,
    sql`select s.kind, s.value, s.contacts, s.customers, s.customer_id,
               case s.kind
                 when 'email' then identify_is_junk(s.value, identify_junk_list(${options}, 'junkEmails'),
                                                    identify_junk_list(${options}, 'junkEmailPatterns'))
                 else identify_is_junk(s.value, identify_junk_list(${options}, 'junkPhones'),
                                       identify_junk_list(${options}, 'junkPhonePatterns'))
               end as junk
          from identify_relink_suspects(${limit}::integer, ${COUNT_CAP}::integer) s`,
  );
  const cap = guardrails.maxContacts;
  const largeCustomers =
    cap === undefined
      ? []
      : await queryRows<{ customer_id: number; contacts: number }>(
          db,
          sql`select customer_id, contacts
                from identify_relink_large_customers(${Math.ceil(cap * NEAR_CAP)}::integer, ${COUNT_CAP}::integer)`,
        );
  return {
    values: values.map((row) => ({
      kind: row.kind,
      value: row.value,
      contacts: row.contacts,
      customers: row.customers,
      customerId: row.customer_id,
      junk: row.junk,
    })),
    largeCustomers: largeCustomers.map((row) => ({
      customerId: row.customer_id,
      contacts: row.contacts,
    })),
    cap,
  };
}

const count = (n: number) => (n >= COUNT_CAP ? `${COUNT_CAP}+` : String(n));

/** The suspects as text for a terminal. */
export function formatSuspects(suspects: Suspects): string {
  const where = (v: SuspectValue) =>
    v.customers === 1 ? `customer ${v.customerId}` : `${v.customers} customers`;
  const lines = [
    "Values shared by the most live contacts:",
    ...(suspects.values.length > 0
      ? suspects.values.map(
          (v) =>
            `  ${count(v.contacts).padStart(7)}  ${v.kind.padEnd(5)}  ${v.value}  in ${where(v)}${v.junk ? "  (junk already)" : ""}`,
        )
      : ["  (none: no two live contacts share an email or a phone number)"]),
    "",
  ];
  const { cap } = suspects;
  if (cap === undefined) {
    lines.push("Customers near the cap: no cap is recorded.");
  } else {
    lines.push(
      `Customers at or above ${Math.round(NEAR_CAP * 100)}% of the cap (${cap}):`,
      ...(suspects.largeCustomers.length > 0
        ? suspects.largeCustomers.map(
            (c) =>
              `  customer ${c.customerId}: ${count(c.contacts)} contacts${c.contacts > cap ? " (over the cap: requests get 409)" : ""}`,
          )
        : ["  (none)"]),
    );
  }
  return lines.join("\n");
}
