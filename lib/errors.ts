/**
 * Every failure a request can meet, and the one place that turns them into HTTP responses.
 * Clients get a stable code, a plain message and a request id; SQL, driver messages and
 * stack traces go to the log line that carries the same request id, never to the client.
 */
import type { ErrorResponse } from "./contract.js";
import type { InputIssue } from "./input.js";

/** A failure whose status, code and message are meant for the client. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: InputIssue[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export const badJson = () =>
  new HttpError(400, "invalid_json", "The request body is not valid JSON");

export const invalidRequest = (issues: InputIssue[]) =>
  new HttpError(400, "invalid_request", "The request body does not match the contract", issues);

/** A GET's query parameters are wrong: the same code as a wrong body, naming each parameter. */
export const invalidQuery = (issues: InputIssue[]) =>
  new HttpError(400, "invalid_request", "The query does not match the contract", issues);

/** The change feed's `after` was not made by this feed, or not by this database's. */
export const invalidCursor = (why: "malformed" | "unknown") =>
  new HttpError(
    400,
    "invalid_cursor",
    why === "malformed"
      ? "after is not a cursor of this feed: pass the next of a previous page, or leave after out to start at the beginning"
      : "after is ahead of anything this feed has handed out (a cursor of another database?): pass the next of a previous page, or leave after out to start at the beginning",
  );

export const methodNotAllowed = (allow: readonly string[]) =>
  new HttpError(405, "method_not_allowed", `Use ${allow.join(", ")}`, [], {
    Allow: allow.join(", "),
  });

export const payloadTooLarge = (limitBytes: number) =>
  new HttpError(413, "payload_too_large", `The request body must be at most ${limitBytes} bytes`);

/** RFC 6750: no credentials gets a bare challenge; wrong ones say invalid_token. */
export const unauthorized = (error?: "invalid_token") =>
  new HttpError(
    401,
    "unauthorized",
    error ? "The API key is not valid" : "Send an API key as Authorization: Bearer <key>",
    [],
    {
      "WWW-Authenticate": error
        ? `Bearer realm="identify", error="${error}"`
        : 'Bearer realm="identify"',
    },
  );

export const customerTooLarge = (cap: number) =>
  new HttpError(
    409,
    "customer_too_large",
    `The customer has, or this request would give it, more than ${cap} contacts (MAX_CONTACTS_PER_CUSTOMER); nothing was written`,
  );

/** Also for a body without Content-Type, which any web page can POST cross-site (no-cors). */
export const unsupportedMediaType = () =>
  new HttpError(415, "unsupported_media_type", "Send the body as application/json");

export const badRequest = (message: string) => new HttpError(400, "bad_request", message);

export const notFound = (pathname: string) =>
  new HttpError(404, "not_found", `Nothing at ${pathname}`);

/**
 * RFC 9110's "this server does not serve that origin": a Host the server is not configured
 * to answer to, such as a DNS-rebinding page's own name pointing at a loopback server.
 */
export const misdirectedRequest = () =>
  new HttpError(
    421,
    "misdirected_request",
    "This server does not answer to that Host name (ALLOWED_HOSTS lists the names it does)",
  );

/**
 * Not a status any client sees: the client closed the connection before its body arrived,
 * so no answer can reach it. The log records it as 499, nginx's code for the same event,
 * rather than as a failure of the service.
 */
export const clientClosed = () =>
  new HttpError(499, "client_closed", "The client closed the connection before its body arrived");

/**
 * A setting is missing or invalid. The message names each variable and never quotes a
 * secret's value (API keys, passwords in DATABASE_URL), because it is logged and printed.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** How long clients should wait before retrying a 503, in seconds. */
export const RETRY_AFTER_SECONDS = 1;

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

/**
 * SQLSTATEs that mean "the database is not available right now" rather than "this request
 * is wrong": connection failures (class 08), shutdowns, too many connections, lock and
 * statement timeouts, and conflicts that outlived their retry.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  "40P01",
  "40001",
  "53300",
  "55P03",
  "57014",
  "57P01",
  "57P02",
  "57P03",
]);

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

/** Walks an error and its `cause` chain (drivers and Drizzle wrap the original error). */
function* causes(error: unknown): Generator<unknown> {
  let current = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

/**
 * The database's own words: the message of the innermost error of the chain, under the
 * driver's and Drizzle's wrappers (Drizzle's own says "Failed query: <the statement>").
 */
export function databaseMessage(error: unknown): string {
  let innermost: unknown = error;
  for (const e of causes(error)) innermost = e;
  return innermost instanceof Error ? innermost.message : String(innermost);
}

/** The SQLSTATE of a database error, wherever it sits in the cause chain. */
export function sqlState(error: unknown): string | undefined {
  for (const e of causes(error)) {
    const code = codeOf(e);
    if (code && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** True for a deadlock or serialization failure: the request may simply be run again. */
export function isRetryableConflict(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && RETRYABLE_SQLSTATES.has(state);
}

/** True when the error means the database is unreachable, overloaded or too slow. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (const e of causes(error)) {
    if (e instanceof DatabaseUnavailableError) return true;
    const code = codeOf(e);
    if (code?.startsWith("08") || (code && UNAVAILABLE_SQLSTATES.has(code))) return true;
    if (code && UNREACHABLE_ERRNOS.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some(isDatabaseUnavailable)) return true;
    const message = e instanceof Error ? e.message : "";
    if (UNREACHABLE_MESSAGES.some((pattern) => pattern.test(message))) return true;
  }
  return false;
}

/**
 * The response and the log fields for any error thrown while serving a request, among them
 * its `outcome`: client_closed for a client that went away, rejected for everything else.
 */
export function toErrorResponse(
  error: unknown,
  requestId: string,
): { response: Response; log: Record<string, unknown> } {
  let status: number;
  let code: string;
  let message: string;
  let issues: InputIssue[] = [];
  let headers: Record<string, string> = {};
  let log: Record<string, unknown> = {};

  if (error instanceof HttpError) {
    ({ status, code, message, issues, headers } = error);
  } else if (error instanceof ConfigError) {
    // Every request fails the same way until the setting is fixed: the log line says which
    // setting, and no request is served with a half-read configuration (e.g. without keys).
    status = 500;
    code = "misconfigured";
    message = "The service is misconfigured; its log names the setting to fix";
    log = { error: error.message };
  } else if (isDatabaseUnavailable(error)) {
    status = 503;
    code = "database_unavailable";
    message = "The database is unavailable; retry shortly (the request is safe to repeat)";
    headers = { "Retry-After": String(RETRY_AFTER_SECONDS) };
    log = { error: describe(error) };
  } else {
    status = 500;
    code = "internal_error";
    message = "Something went wrong on our side";
    log = { error: describe(error) };
  }

  const body: ErrorResponse = { error: { code, message, issues, requestId } };
  return {
    response: Response.json(body, {
      status,
      headers: { ...headers, "X-Request-Id": requestId, "Cache-Control": "no-store" },
    }),
    log: { outcome: status === 499 ? "client_closed" : "rejected", code, ...log },
  };
}

/** Drizzle appends the bound parameters (emails, phone numbers) to a failed query's message. */
const redactParams = (text: string | undefined) =>
  text?.replace(/\nparams: .*/s, "\nparams: [redacted]");

/**
 * What the log keeps of an unexpected error: name, message, SQLSTATE and stack, but never
 * bound parameters or a driver's `detail` field, which quote the email or phone number.
 */
function describe(error: unknown): Record<string, unknown> {
  const chain = [...causes(error)].map((e) =>
    e instanceof Error
      ? {
          name: e.name,
          message: redactParams(e.message),
          code: codeOf(e),
          stack: redactParams(e.stack),
        }
      : { value: typeof e },
  );
  return { chain };
}

/** A database's SQLSTATE: five characters, of a class that is never a Node errno (EPIPE). */
const SQLSTATE = /^[0-9A-DF-Z][0-9A-Z]{4}$/;

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
    for (const e of causes(chainStart)) {
      if (e instanceof AggregateError && depth < 2) {
        for (const inner of e.errors) collect(inner, depth + 1);
      }
      if (isFailedQuery(e)) continue;
      const code = codeOf(e);
      const state = code && SQLSTATE.test(code) ? code : undefined;
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
