/**
 * What the SQL functions (drizzle/functions/) and the TypeScript that calls them agree on:
 * the options jsonb the functions take, and the error code TypeScript meets. Tests check
 * behaviour, not text: a request and an erasure over the cap fail with this code
 * (test/suites/audit.ts, test/suites/forget.ts), and lib/errors.ts answers it with 409.
 * The customer lock space is not here: it is named in one place only, the one routine that
 * takes customer locks (drizzle/functions/identify_lock_customer.sql).
 */
import { type SQL, sql } from "drizzle-orm";

/**
 * The guardrail options the SQL functions take (all absent when off): junk values and
 * patterns, which never link customers, and the cap. lib/guardrails.ts reads them from the
 * configuration or the deployment's record.
 */
export interface Guardrails {
  junkEmails?: string[];
  junkEmailPatterns?: string[];
  junkPhones?: string[];
  junkPhonePatterns?: string[];
  maxContacts?: number;
}

/**
 * The options jsonb, `p_options` in every function that takes it; each key is optional.
 * identify_contact reads all but dryRun; identify_forget all but deadlineMs (its cap,
 * maxContacts, is applied by identify_lock_customer, the customer locking and reading both
 * share, and absent means no cap: an operator's explicit choice, `npm run forget -- --over-cap`);
 * the other functions the junk lists.
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
 * SQLSTATE identify_lock_customer raises when the customer a request (identify_contact) or an
 * erasure (identify_forget) reaches has more than `maxContacts` contacts, and identify_contact
 * when a request would grow one past it.
 */
export const SQLSTATE_CUSTOMER_TOO_LARGE = "IDC01";
