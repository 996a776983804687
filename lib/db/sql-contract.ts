/**
 * What the SQL functions (drizzle/functions/) and the TypeScript that calls them agree on:
 * the options jsonb the functions take, and the error code and lock space they use. A test
 * (test/function-sources.test.ts) checks that the SQL still says what these constants say.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Guardrails } from "../guardrails.js";

/**
 * The options jsonb, `p_options` in every function that takes it; each key is optional.
 * identify_contact reads all but dryRun; identify_forget all but deadlineMs (its cap,
 * maxContacts, is applied by identify_lock_customer, and absent means no cap: an operator's
 * explicit choice, `npm run forget -- --over-cap`); the other functions the junk lists.
 */
export interface SqlFunctionOptions extends Guardrails {
  /** Recorded on every identity event the call causes. */
  requestId?: string;
  /** Longest wait for another request's locks inside the database; 0 waits forever. */
  lockTimeoutMs?: number;
  /**
   * identify_contact raises 57014 (query_canceled) once the statement has run this long:
   * a deadline the database enforces itself; absent or 0 = none.
   */
  deadlineMs?: number;
  /** identify_forget only: find, lock and count what would be erased, but write nothing. */
  dryRun?: boolean;
}

/** The options as the jsonb argument of a function call. */
export function optionsJsonb(options: SqlFunctionOptions): SQL {
  return sql`${JSON.stringify(options)}::jsonb`;
}

/**
 * SQLSTATE identify_contact raises when a request reaches a customer of more than
 * `maxContacts` contacts, or would grow one past it; identify_forget (through
 * identify_lock_customer) when the customer to erase has more than `maxContacts`.
 */
export const SQLSTATE_CUSTOMER_TOO_LARGE = "IDC01";

/**
 * SQLSTATE identify_contact raises, and catches itself, when the customer changed while it
 * waited for the customer's locks; it never reaches TypeScript.
 */
export const SQLSTATE_CUSTOMER_CHANGED = "IDR01";

/**
 * First key of every customer lock, `pg_advisory_xact_lock(space, contact id)`: a number
 * this service reserved, so its two-key advisory locks meet no one else's.
 */
export const CUSTOMER_LOCK_SPACE = 1_768_383_844;
