/** Looking inside failures, so that a test can tell the failure it expects from any other. */

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
  for (let current = error; current instanceof Error; current = current.cause) {
    const { code } = current as { code?: unknown };
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
      return { code, message: current.message };
    }
  }
  return undefined;
}
