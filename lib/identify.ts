/**
 * The reconciler: turns normalized identifiers into the customer they belong to. All
 * reading, locking and writing happens in one call of the `identify_contact` database
 * function (drizzle/functions/identify_contact.sql), so every request costs exactly one
 * statement and holds its locks only while Postgres itself is working.
 */
import { sql } from "drizzle-orm";
import type { ContactResponse } from "./contract.js";
import type { Database } from "./db/client.js";
import { isRetryableConflict } from "./db/errors.js";
import { queryRows } from "./db/query.js";
import type { LinkPrecedence } from "./db/schema.js";
import { optionsJsonb } from "./db/sql-contract.js";
import type { Guardrails } from "./guardrails.js";
import type { IdentifyInput } from "./input.js";

/** What a request did: the log and tests read it; the response does not carry it. */
type Outcome = "created" | "added_secondary" | "merged" | "unchanged";

/** One customer, as the contract describes it. */
interface Customer {
  primaryContactId: number;
  /** Distinct, primary's first, then by contact creation order. */
  emails: string[];
  /** Distinct, primary's first, then by contact creation order. */
  phoneNumbers: string[];
  /** Every other contact of the customer, by creation order. */
  secondaryContactIds: number[];
}

interface IdentifyResult {
  outcome: Outcome;
  customer: Customer;
}

interface IdentifyOptions {
  /** Longest wait for another request's locks inside the database; 0 waits forever. */
  lockTimeoutMs: number;
  /** Recorded on every identity event the request causes. */
  requestId: string;
  /** Over-merge guardrails: junk values and the cap (lib/config.ts turns the cap on by default). */
  guardrails?: Guardrails;
  /**
   * The database gives up (503) once the statement has run this long, so no query outlives
   * its request; absent or 0 = never. The handler passes DB_QUERY_TIMEOUT_MS.
   */
  deadlineMs?: number;
}

/** A row of `identify_contact`: one contact of the customer, oldest first. */
interface ContactRow {
  outcome: Outcome;
  id: number;
  email: string | null;
  phone_number: string | null;
  link_precedence: LinkPrecedence;
  linked_id: number | null;
}

/**
 * Links the request's email and phone number into a customer and returns that customer:
 * creates a primary, adds a secondary, merges two customers, or changes nothing (see the
 * README for the rules), recording each change in identity_events. One database statement;
 * a deadlock or serialization failure is retried once, after which it surfaces to the caller.
 * @throws the database's error as it is: SQLSTATE IDC01 when the request reaches a customer over
 * the cap or would grow one past it, and the rest; lib/errors.ts's table says what each answers.
 */
export async function identify(
  db: Database,
  input: IdentifyInput,
  options: IdentifyOptions,
): Promise<IdentifyResult> {
  const { requestId, lockTimeoutMs, deadlineMs, guardrails } = options;
  const statement = sql`select outcome, id, email, phone_number, link_precedence, linked_id
    from identify_contact(${input.email}::text, ${input.phoneNumber}::text,
                          ${optionsJsonb({ requestId, lockTimeoutMs, deadlineMs, ...guardrails })})`;
  const rows = await withOneRetry(() => queryRows<ContactRow>(db, statement));
  return { outcome: outcomeOf(rows), customer: toCustomer(rows) };
}

/** Runs the statement again, once, after a deadlock or serialization failure. */
async function withOneRetry<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (!isRetryableConflict(error)) throw error;
    return run();
  }
}

function outcomeOf(rows: readonly ContactRow[]): Outcome {
  const outcome = rows[0]?.outcome;
  if (!outcome) throw new Error("identify_contact returned no contacts");
  return outcome;
}

/** Shapes a customer's rows (oldest first) into the contract's customer. */
function toCustomer(rows: readonly ContactRow[]): Customer {
  const [primary, ...secondaries] = rows;
  if (primary?.link_precedence !== "primary") {
    throw new Error("identify_contact did not return the customer's primary first");
  }
  const emails = new Set<string>();
  const phoneNumbers = new Set<string>();
  for (const row of rows) {
    if (row.email !== null) emails.add(row.email);
    if (row.phone_number !== null) phoneNumbers.add(row.phone_number);
  }
  return {
    primaryContactId: primary.id,
    emails: [...emails],
    phoneNumbers: [...phoneNumbers],
    secondaryContactIds: secondaries.map((row) => row.id),
  };
}

/** The 200 body: the customer, plus the original specification's misspelled alias. */
export function toContactBody(customer: Customer): ContactResponse {
  return {
    contact: {
      primaryContactId: customer.primaryContactId,
      primaryContatctId: customer.primaryContactId,
      emails: customer.emails,
      phoneNumbers: customer.phoneNumbers,
      secondaryContactIds: customer.secondaryContactIds,
    },
  };
}
