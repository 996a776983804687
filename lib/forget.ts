/**
 * Erasure of a person (GDPR art. 17, CCPA): deletes the whole customer an email, phone
 * number or contact id belongs to, with its audit events, leaving one erasure record of ids
 * and counts (drizzle/functions/identify_forget.sql does it in one statement, under the
 * locks POST /identify takes). `npm run forget` is its command line; an admin route could
 * call it the same way. Nothing here ever returns or prints an erased value.
 */
import { sql } from "drizzle-orm";
import { readConfig } from "./config.js";
import type { Database } from "./db/client.js";
import { sqlState } from "./db/errors.js";
import { queryRows } from "./db/query.js";
import { optionsJsonb, SQLSTATE_CUSTOMER_TOO_LARGE } from "./db/sql-contract.js";
import { type CustomerSelector, selectorArguments } from "./explain.js";
import type { Guardrails } from "./guardrails.js";
import { describeError } from "./redact.js";

export interface ForgetOptions {
  /**
   * Recorded for ever on the append-only erasure record: a ticket reference, never a person's
   * data. It must pass {@link checkRequestId}, which forgetCustomer checks first.
   */
  requestId: string;
  /** Find, lock and count, but erase nothing. */
  dryRun?: boolean;
  /**
   * Longest wait for the customer's locks, as for POST /identify; 0 waits forever. Absent:
   * DB_LOCK_TIMEOUT_MS's default (lib/config.ts), the one place that default is written.
   */
  lockTimeoutMs?: number;
  /**
   * The guardrails in force: the junk lists, so the customer found is the one POST /identify
   * links; and the cap, maxContacts, past which the search stops and the erasure is refused
   * ({@link CustomerTooLargeError}), so its work stays bounded like a request's.
   */
  guardrails?: Guardrails;
  /**
   * Erase the customer whatever its size: the cap of `guardrails` is not applied, and the
   * search reads the whole customer. An operator's explicit choice, never a default.
   */
  overCap?: boolean;
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
 * A failed erasure: its reasons as lib/redact.ts's describeError keeps them, and the SQLSTATE
 * (in `code`, which sqlState reads). Drizzle's own error quotes the query's parameters, which
 * are the very values being erased, and erasure output ends up in tickets and logs, so it is
 * not passed on.
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
 * The customer has more live contacts than the cap: the search stopped past it, and nothing
 * was erased. `overCap` erases it anyway.
 */
export class CustomerTooLargeError extends ForgetError {
  constructor(readonly maxContacts: number) {
    super(
      `The customer has more than ${maxContacts} contacts, the cap; nothing was erased`,
      SQLSTATE_CUSTOMER_TOO_LARGE,
    );
    this.name = "CustomerTooLargeError";
  }
}

/** What a request id recorded on an erasure must look like, for messages and usage texts. */
export const REQUEST_ID_RULE =
  "a ticket reference such as PRIV-1234: 1 to 64 characters of letters, digits and . _ : # / -, " +
  "starting with a letter and holding at least one digit, so never an email, a phone number or a name";

/** Starts with a letter; only the characters of a ticket reference (no "@", no space). */
const REQUEST_ID_SHAPE = /^[A-Za-z][A-Za-z0-9._:#/-]{0,63}$/;

/**
 * A request id that does not look like a ticket reference. It would be kept for ever on the
 * append-only erasure record, where a value typed by mistake (an email, a phone number, a
 * name) could never be removed; so it is refused before the database is touched, and the
 * message never repeats it.
 */
export class InvalidRequestIdError extends ForgetError {
  constructor() {
    super(
      `The request id must be ${REQUEST_ID_RULE}. It is not repeated here; nothing was erased`,
      undefined,
    );
    this.name = "InvalidRequestIdError";
  }
}

/**
 * Checks a request id against {@link REQUEST_ID_RULE}.
 * @throws InvalidRequestIdError, which never quotes the value.
 */
export function checkRequestId(requestId: string): void {
  if (!REQUEST_ID_SHAPE.test(requestId) || !/[0-9]/.test(requestId)) {
    throw new InvalidRequestIdError();
  }
}

/**
 * Erases the customer the selector identifies: all its contacts, including soft-deleted
 * ones that were part of it, and their identity events, in one transaction; records the
 * erasure. Finding nothing is not an error: the result lists no contacts.
 * @throws InvalidRequestIdError before touching the database, for a request id that is no
 * ticket reference; CustomerTooLargeError for a customer over the cap (unless `overCap`);
 * ForgetError when the database refuses otherwise (a junk identifier, a lock timeout, …).
 * No message quotes an identifier.
 */
export async function forgetCustomer(
  db: Database,
  selector: CustomerSelector,
  options: ForgetOptions,
): Promise<ForgetResult> {
  const { email, phone, id } = selectorArguments(selector);
  const {
    requestId,
    dryRun = false,
    lockTimeoutMs = readConfig({}).DB_LOCK_TIMEOUT_MS,
    overCap = false,
  } = options;
  checkRequestId(requestId);
  const { maxContacts, ...junk } = options.guardrails ?? {};
  // Without the key, identify_lock_customer's search has no cap.
  const guardrails: Guardrails =
    overCap || maxContacts === undefined ? junk : { ...junk, maxContacts };
  let rows: { erasure_id: string | number | null; contact_ids: number[]; event_count: number }[];
  try {
    rows = await queryRows(
      db,
      sql`select erasure_id, contact_ids, event_count
            from identify_forget(${email}::text, ${phone}::text, ${id}::integer,
                                 ${optionsJsonb({ requestId, lockTimeoutMs, dryRun, ...guardrails })})`,
    );
  } catch (error) {
    const code = sqlState(error);
    if (code === SQLSTATE_CUSTOMER_TOO_LARGE && guardrails.maxContacts !== undefined) {
      throw new CustomerTooLargeError(guardrails.maxContacts);
    }
    // describeError, never the driver's message: Drizzle's quotes the query's parameters,
    // the values being erased.
    throw new ForgetError(describeError(error), code);
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
