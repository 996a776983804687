/**
 * Canonical form, the state every writer leaves the data in (requests, erasures, imports,
 * relinking), as SQL that counts violations. Lookups answer from one lock-free read that
 * is fastest on canonical data and falls back to the locked path wherever it is not
 * (drizzle/functions/identify_contact.sql, path A), so this is checked, not assumed: the
 * tests run it after every concurrent suite, and the benchmark after every section. Only
 * live contacts count: deleted ones do not exist for reconciliation.
 *
 * Canonical form, promise by promise:
 * - every customer is flat: each live secondary links straight to a live primary
 *   (secondaryNotOnLivePrimary);
 * - its primary is its oldest live contact (primaryNotOldest);
 * - no value that is not junk is carried by live contacts of two customers
 *   (identifierInTwoCustomers);
 * - and no two live contacts hold the same (email, phone number) (duplicateRows; also a
 *   unique partial index).
 */
import { sql } from "drizzle-orm";
import type { Guardrails } from "../guardrails.js";
import type { Database } from "./database.js";
import { queryRows } from "./query.js";
import { optionsJsonb } from "./sql-contract.js";

interface InvariantReport {
  /** A primary with an older live contact in its customer. */
  primaryNotOldest: number;
  /** A secondary whose linked_id is not a live primary (a chain, or a dangling link). */
  secondaryNotOnLivePrimary: number;
  /** An email or phone number found in more than one customer. */
  identifierInTwoCustomers: number;
  /** Two live contacts with the same (email, phone number). */
  duplicateRows: number;
}

/**
 * Counts violations of each invariant; all zero means the data is consistent. Junk values
 * (see lib/guardrails.ts) may appear in many customers by design, so pass the guardrails
 * in force.
 */
export async function checkInvariants(
  db: Database,
  guardrails: Guardrails = {},
): Promise<InvariantReport> {
  const options = optionsJsonb(guardrails);
  const [row] = await queryRows<Record<keyof InvariantReport, number>>(
    db,
    sql`
    with live as (
      select id, email, phone_number, linked_id, link_precedence, created_at,
             case when link_precedence = 'primary' then id else linked_id end as customer
        from contacts where deleted_at is null
    ),
    identifiers as (
      select 'email' as kind, email as value, customer from live
       where email is not null
         and not coalesce(identify_is_junk(email, identify_junk_list(${options}, 'junkEmails'),
                          identify_junk_list(${options}, 'junkEmailPatterns')), false)
      union all
      select 'phone', phone_number, customer from live
       where phone_number is not null
         and not coalesce(identify_is_junk(phone_number, identify_junk_list(${options}, 'junkPhones'),
                          identify_junk_list(${options}, 'junkPhonePatterns')), false)
    )
    select
      (select count(*) from live s join live p on p.id = s.linked_id
        where (s.created_at, s.id) < (p.created_at, p.id))::int as "primaryNotOldest",
      (select count(*) from live s
        where s.link_precedence = 'secondary'
          and not exists (select 1 from live p
                           where p.id = s.linked_id and p.link_precedence = 'primary'))::int
        as "secondaryNotOnLivePrimary",
      (select count(*) from (select 1 from identifiers group by kind, value
                              having count(distinct customer) > 1) split)::int
        as "identifierInTwoCustomers",
      (select count(*) from (select 1 from live
                              group by coalesce(email, ''), coalesce(phone_number, '')
                              having count(*) > 1) dup)::int as "duplicateRows"
  `,
  );
  if (!row) throw new Error("invariant query returned no row");
  return row;
}

/** The total number of violations in a report. */
export const violationCount = (report: InvariantReport) =>
  Object.values(report).reduce((sum, count) => sum + count, 0);
