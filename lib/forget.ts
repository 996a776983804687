/**
 * Erasure of a person (GDPR art. 17, CCPA): deletes the whole customer an email, phone
 * number or contact id belongs to, with its audit events, leaving one erasure record of ids
 * and counts (drizzle/functions/identify_forget.sql does it in one statement, under the
 * locks POST /identify takes). `npm run forget` is its command line; an admin route could
 * call it the same way. Nothing here ever returns or prints an erased value.
 */
import { sql } from "drizzle-orm";
import type { Database } from "./db/client.js";
import { queryRows } from "./db/query.js";
import { optionsJsonb } from "./db/sql-contract.js";
import { databaseMessage, sqlState } from "./errors.js";
import type { CustomerSelector } from "./explain.js";
import type { Guardrails } from "./guardrails.js";

export interface ForgetOptions {
  /** Recorded on the erasure record: a ticket number, say; never the erased values. */
  requestId: string;
  /** Find, lock and count, but erase nothing. */
  dryRun?: boolean;
  /** Longest wait for the customer's locks, as for POST /identify; 0 waits forever. */
  lockTimeoutMs?: number;
  /** The guardrails in force, so the customer found is the one POST /identify links. */
  guardrails?: Guardrails;
}

export interface ForgetResult {
  /** The ids of the contacts erased (or, in a dry run, to be erased), ascending. */
  contactIds: number[];
  /** How many identity events went (or would go) with them. */
  eventCount: number;
  /** The erasure record's id; null in a dry run or when nothing matched. */
  erasureId: number | null;
  dryRun: boolean;
}

/**
 * A failed erasure: the database's own message and SQLSTATE (in `code`, which sqlState
 * reads). Drizzle's own error quotes the query's parameters, which are the very values being
 * erased, and erasure output ends up in tickets and logs, so it is not passed on.
 */
export class ForgetError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "ForgetError";
  }
}

/**
 * Erases the customer the selector identifies: all its contacts, including soft-deleted
 * ones that were part of it, and their identity events, in one transaction; records the
 * erasure. Finding nothing is not an error: the result lists no contacts.
 * @throws ForgetError when the database refuses (a junk identifier, a lock timeout, …).
 */
export async function forgetCustomer(
  db: Database,
  selector: CustomerSelector,
  options: ForgetOptions,
): Promise<ForgetResult> {
  const email = "email" in selector ? selector.email : null;
  const phone = "phoneNumber" in selector ? selector.phoneNumber : null;
  const id = "id" in selector ? selector.id : null;
  const { requestId, dryRun = false, lockTimeoutMs, guardrails } = options;
  let rows: { erasure_id: string | number | null; contact_ids: number[]; event_count: number }[];
  try {
    rows = await queryRows(
      db,
      sql`select erasure_id, contact_ids, event_count
            from identify_forget(${email}::text, ${phone}::text, ${id}::integer,
                                 ${optionsJsonb({ requestId, lockTimeoutMs, dryRun, ...guardrails })})`,
    );
  } catch (error) {
    throw new ForgetError(databaseMessage(error), sqlState(error));
  }
  const [row] = rows;
  if (!row) throw new ForgetError("identify_forget returned no row", undefined);
  return {
    contactIds: row.contact_ids,
    eventCount: row.event_count,
    // bigint: node-postgres hands it over as a string.
    erasureId: row.erasure_id === null ? null : Number(row.erasure_id),
    dryRun,
  };
}

const list = (ids: readonly number[]) => ids.join(", ");

/** What happened, in counts and ids only, for a terminal or a ticket. */
export function formatForgetResult(result: ForgetResult, requestId: string): string {
  const contacts = `${result.contactIds.length} contact(s): ${list(result.contactIds)}`;
  if (result.contactIds.length === 0) return "Nothing to erase: no live contact matches.";
  if (result.dryRun) {
    return [`Would erase ${contacts}`, `and ${result.eventCount} audit event(s).`].join("\n");
  }
  return [
    `Erased ${contacts}`,
    `and ${result.eventCount} audit event(s).`,
    `Erasure record ${result.erasureId}, request ${requestId}.`,
  ].join("\n");
}
