/**
 * What a failure of the database means. Drivers and Drizzle wrap the database's own error in
 * theirs, so every question here walks the `cause` chain: the SQLSTATE and message under the
 * wrappers, whether the same request may succeed if run again, and whether the driver could
 * not reach the database at all. How a failure becomes an HTTP response, and which SQLSTATEs
 * are a 503, is lib/errors.ts's; what of it may be printed, lib/redact.ts's.
 */

/**
 * The database could not serve the request (unreachable, overloaded, timed out, or not
 * configured). Nothing was written, or the write is safe to repeat: /identify is idempotent.
 */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DatabaseUnavailableError";
  }
}

/** SQLSTATEs after which the same request may succeed if sent again. */
const RETRYABLE_SQLSTATES = new Set(["40P01", "40001"]);

/** Node network errors that mean the database host could not be reached. */
const UNREACHABLE_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);

/** Connection failures the drivers report without a code (pg, Neon, PGlite). */
const UNREACHABLE_MESSAGES = [
  /connection terminated/i,
  /connection timeout/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /websocket/i,
  /client has encountered a connection error/i,
  /pglite is closed/i,
];

/**
 * An error, then the error it wraps, and so on down its `cause` chain: the one walker of
 * cause chains. Stops at the first missing cause, and after 8 links, so a chain that loops
 * back on itself still ends.
 */
export function* causeChain(error: unknown): Generator<unknown> {
  let current = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/** The innermost error of the chain: what the driver or the database itself threw. */
export function innermostCause(error: unknown): unknown {
  let innermost: unknown = error;
  for (const e of causeChain(error)) innermost = e;
  return innermost;
}

/** An error's `code` property when it is a string: a SQLSTATE, or a Node errno (EPIPE). */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The database's own words: the message of the innermost error of the chain, under the
 * driver's and Drizzle's wrappers (Drizzle's own says "Failed query: <the statement>").
 */
export function databaseMessage(error: unknown): string {
  const innermost = innermostCause(error);
  return innermost instanceof Error ? innermost.message : String(innermost);
}

/**
 * A SQLSTATE's shape: five digits or capitals, of a class that is never a Node errno's first
 * letter (no SQLSTATE class starts with E; EPIPE, EPERM and EBUSY are errnos of five letters).
 */
const SQLSTATE = /^[0-9A-DF-Z][0-9A-Z]{4}$/;

/** True when `code` is a SQLSTATE, not a Node errno. */
export const isSqlState = (code: string | undefined): code is string =>
  code !== undefined && SQLSTATE.test(code);

/** The SQLSTATE of a database error, wherever it sits in the cause chain. */
export function sqlState(error: unknown): string | undefined {
  for (const e of causeChain(error)) {
    const code = errorCode(e);
    if (isSqlState(code)) return code;
  }
  return undefined;
}

/** True for a deadlock or serialization failure: the request may simply be run again. */
export function isRetryableConflict(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && RETRYABLE_SQLSTATES.has(state);
}

/**
 * True when the driver could not reach the database, or none is configured: a failure that
 * carries no SQLSTATE (a Node errno, a driver's own message, DatabaseUnavailableError). Which
 * SQLSTATEs mean "unavailable" is lib/errors.ts's table, with every other SQLSTATE's answer.
 */
export function isDatabaseUnreachable(error: unknown): boolean {
  for (const e of causeChain(error)) {
    if (e instanceof DatabaseUnavailableError) return true;
    const code = errorCode(e);
    if (code && UNREACHABLE_ERRNOS.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some(isDatabaseUnreachable)) return true;
    const message = e instanceof Error ? e.message : "";
    if (UNREACHABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
  }
  return false;
}
