/**
 * What of an error may leave the process: for the log line of a failed request
 * ({@link describeForLog}) and for a terminal, a CI log or a ticket ({@link describeError}).
 * A failure's message and fields can quote what it failed on, so both keep the reasons and
 * drop bound parameters (emails, phone numbers), a driver's `detail`, and secrets.
 */
import { causeChain, errorCode, isSqlState } from "./db/errors.js";

/** Drizzle appends the bound parameters (emails, phone numbers) to a failed query's message. */
const redactParams = (text: string | undefined) =>
  text?.replace(/\nparams: .*/s, "\nparams: [redacted]");

/**
 * What the log keeps of an unexpected error: name, message, SQLSTATE and stack, but never
 * bound parameters or a driver's `detail` field, which quote the email or phone number.
 */
export function describeForLog(error: unknown): Record<string, unknown> {
  const chain = [...causeChain(error)].map((e) =>
    e instanceof Error
      ? {
          name: e.name,
          message: redactParams(e.message),
          code: errorCode(e),
          stack: redactParams(e.stack),
        }
      : { value: typeof e },
  );
  return { chain };
}

/** Longest text describeError returns: a reason is a sentence, never a dump. */
const MAX_DESCRIPTION = 1_000;

/**
 * One reason, made safe to print: its first line only (Drizzle's "Failed query" puts the
 * bound values on the next one), no password of a connection string, and, for a data
 * exception (SQLSTATE class 22: "invalid input syntax for type integer: \"…\"", "malformed
 * array literal: \"…\""), none of the quoted text, which is the value refused.
 */
function redactReason(message: string, code: string | undefined): string {
  let reason = message.split("\n", 1)[0] ?? "";
  reason = reason
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@]*@/gi, "$1:[redacted]@")
    .replace(/\b(password\s*=\s*)\S+/gi, "$1[redacted]");
  if (code?.startsWith("22")) reason = reason.replace(/"(?:[^"]|"")*"/g, '"[redacted]"');
  return reason;
}

/** Drizzle's wrapper: "Failed query: <the statement>\nparams: <every bound value>". */
const isFailedQuery = (error: unknown) =>
  error instanceof Error && error.message.startsWith("Failed query: ");

/**
 * Why something failed, in one line for a terminal, a CI log or a ticket: the reason of each
 * error in the cause chain (the database's own message, with its SQLSTATE; an SSL refusal or a
 * wrong password from the driver under it), and nothing that can hold personal data or a
 * secret. So never Drizzle's "Failed query" (the statement, then every bound value: a
 * failed import's batch is thousands of emails and phone numbers), never a driver's `detail`,
 * `where` or `internalQuery` field (a unique violation's detail quotes the key), never the
 * value a data exception quotes, never a connection string's password. At most
 * {@link MAX_DESCRIPTION} characters.
 */
export function describeError(error: unknown): string {
  const reasons: string[] = [];
  const collect = (chainStart: unknown, depth: number) => {
    for (const e of causeChain(chainStart)) {
      if (e instanceof AggregateError && depth < 2) {
        for (const inner of e.errors) collect(inner, depth + 1);
      }
      if (isFailedQuery(e)) continue;
      const code = errorCode(e);
      const state = isSqlState(code) ? code : undefined;
      const message = e instanceof Error ? e.message : typeof e === "string" ? e : "";
      const reason = redactReason(message, state);
      const described = state ? `${reason} (SQLSTATE ${state})` : reason;
      if (reason && !reasons.includes(described)) reasons.push(described);
    }
  };
  collect(error, 0);
  if (reasons.length === 0) {
    return isFailedQuery(error) ? "a database query failed" : "unknown error";
  }
  const text = reasons.join(": ");
  return text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 1)}…` : text;
}
