/**
 * Every failure a request can meet, and the one place that turns them into HTTP responses:
 * the error factories below, and SQLSTATE_ANSWERS, the one table from a database error's
 * SQLSTATE to its answer. Clients get a stable code, a plain message and a request id; SQL,
 * driver messages and stack traces go to the log line that carries the same request id,
 * never to the client. What a SQLSTATE or a driver failure means is lib/db/errors.ts's to
 * say; what the log line keeps of a failure, lib/redact.ts's.
 */
import type { ErrorResponse } from "./contract.js";
import { causeChain, errorCode, isDatabaseUnreachable, isSqlState } from "./db/errors.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "./db/sql-contract.js";
import { describeForLog } from "./redact.js";

/** One problem with one field, as returned to the caller. `path` is "" for the body itself. */
export interface InputIssue {
  path: string;
  message: string;
}

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

/** Why the change feed refuses an `after`: each message says what the consumer does next. */
const CURSOR_REFUSALS = {
  malformed:
    "after is not a cursor of this feed: pass the next of a previous page, or leave after out to start at the beginning",
  outdated:
    "after is a cursor of an earlier version of this feed, which does not say which database handed it out: leave after out to start again from the beginning (every change is a set or a remove, so replaying them is safe)",
  elsewhere:
    "after was handed out by another database (another database on the server, a copy, a restore or a branch): leave after out to start again from the beginning (every change is a set or a remove, so replaying them is safe)",
  unknown:
    "after is ahead of anything this database has handed out: pass the next of a previous page, or leave after out to start again from the beginning",
} as const;

/** The change feed's `after` was not made by this feed, or not by this database. */
export const invalidCursor = (why: keyof typeof CURSOR_REFUSALS) =>
  new HttpError(400, "invalid_cursor", CURSOR_REFUSALS[why]);

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

/** `cap` is MAX_CONTACTS_PER_CUSTOMER; the message names the setting alone when it is not known. */
export const customerTooLarge = (cap?: number) =>
  new HttpError(
    409,
    "customer_too_large",
    `The customer has, or this request would give it, more than ${cap === undefined ? "the cap of" : cap} contacts (MAX_CONTACTS_PER_CUSTOMER); nothing was written`,
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
const RETRY_AFTER_SECONDS = 1;

/** The database could not serve the request; nothing was written, or the write is safe to repeat. */
export const databaseUnavailable = () =>
  new HttpError(
    503,
    "database_unavailable",
    "The database is unavailable; retry shortly (the request is safe to repeat)",
    [],
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );

/** A setting is invalid (a ConfigError): every request gets it until the setting is fixed. */
export const misconfigured = () =>
  new HttpError(
    500,
    "misconfigured",
    "The service is misconfigured; its log names the setting to fix",
  );

/** Anything else: what went wrong is in the log line only. */
export const internalError = () =>
  new HttpError(500, "internal_error", "Something went wrong on our side");

/** What the request's handler knows that an answer may name. */
export interface ErrorContext {
  /** MAX_CONTACTS_PER_CUSTOMER, for customer_too_large. */
  maxContacts?: number;
}

/**
 * Every SQLSTATE that answers something other than 500 internal_error, and what it answers:
 * the one table from a database error to HTTP. A two-character key is a whole class. The 503s
 * are the database being unavailable rather than the request wrong: nothing was written, and
 * /identify is idempotent, so the client may simply send it again.
 */
const SQLSTATE_ANSWERS: Readonly<Record<string, (context: ErrorContext) => HttpError>> = {
  // identify_lock_customer and identify_contact: the customer is, or would grow, over the cap.
  [SQLSTATE_CUSTOMER_TOO_LARGE]: ({ maxContacts }) => customerTooLarge(maxContacts),
  // connection_exception: the connection failed or broke.
  "08": databaseUnavailable,
  // deadlock_detected, serialization_failure: still there after lib/identify.ts's one retry.
  "40P01": databaseUnavailable,
  "40001": databaseUnavailable,
  // too_many_connections.
  "53300": databaseUnavailable,
  // lock_not_available: a lock wait outlived DB_LOCK_TIMEOUT_MS.
  "55P03": databaseUnavailable,
  // query_canceled: the statement outlived its deadline (DB_QUERY_TIMEOUT_MS).
  "57014": databaseUnavailable,
  // admin_shutdown, crash_shutdown, cannot_connect_now: the server is going down or starting.
  "57P01": databaseUnavailable,
  "57P02": databaseUnavailable,
  "57P03": databaseUnavailable,
};

/**
 * The answer SQLSTATE_ANSWERS gives a database error: the first SQLSTATE down its cause chain
 * (and inside an AggregateError, as a driver reports several addresses tried) that the table
 * lists; undefined when none does.
 */
function sqlStateAnswer(error: unknown, context: ErrorContext): HttpError | undefined {
  for (const e of causeChain(error)) {
    const code = errorCode(e);
    const answer = isSqlState(code)
      ? (SQLSTATE_ANSWERS[code] ?? SQLSTATE_ANSWERS[code.slice(0, 2)])
      : undefined;
    if (answer) return answer(context);
    if (e instanceof AggregateError) {
      for (const inner of e.errors) {
        const found = sqlStateAnswer(inner, context);
        if (found) return found;
      }
    }
  }
  return undefined;
}

/**
 * The response and the log fields for any error thrown while serving a request, among them
 * its `outcome`: client_closed for a client that went away, rejected for everything else.
 * `context` is what the handler knows that an answer may name (the cap).
 */
export function toErrorResponse(
  error: unknown,
  requestId: string,
  context: ErrorContext = {},
): { response: Response; log: Record<string, unknown> } {
  let answer: HttpError;
  let log: Record<string, unknown> = {};
  if (error instanceof HttpError) {
    answer = error;
  } else if (error instanceof ConfigError) {
    // Every request fails the same way until the setting is fixed: the log line says which
    // setting, and no request is served with a half-read configuration (e.g. without keys).
    answer = misconfigured();
    log = { error: error.message };
  } else {
    answer =
      sqlStateAnswer(error, context) ??
      (isDatabaseUnreachable(error) ? databaseUnavailable() : internalError());
    log = { error: describeForLog(error) };
  }

  const { status, code, message, issues, headers } = answer;
  const body: ErrorResponse = { error: { code, message, issues, requestId } };
  return {
    response: Response.json(body, {
      status,
      headers: { ...headers, "X-Request-Id": requestId, "Cache-Control": "no-store" },
    }),
    log: { outcome: status === 499 ? "client_closed" : "rejected", code, ...log },
  };
}
