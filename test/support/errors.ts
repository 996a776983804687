/** Looking inside failures, so that a test can tell the failure it expects from any other. */
import { causeChain, errorCode, sqlState } from "../../lib/db/errors.js";

/** SQLSTATE 42501: what the append-only tables' triggers raise for a change. */
export const INSUFFICIENT_PRIVILEGE = "42501";

/** SQLSTATE 2201B: PostgreSQL cannot compile a regular expression. */
export const INVALID_REGULAR_EXPRESSION = "2201B";

/** What the promise rejected with; a promise that resolves fails the test. */
export async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure, but the promise resolved");
}

/**
 * The database's own error, with its SQLSTATE and message, from under whatever Drizzle and
 * the driver wrapped it in (each keeps the error it caught as `cause`).
 */
export function databaseError(error: unknown): { code: string; message: string } | undefined {
  const code = sqlState(error);
  const raised = [...causeChain(error)].find((e) => errorCode(e) === code);
  return code && raised instanceof Error ? { code, message: raised.message } : undefined;
}
