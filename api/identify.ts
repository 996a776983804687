/**
 * POST /identify (also /api/identify) and GET /identify/changes, the change feed (also
 * /api/identify/changes): the one Vercel Function. Glue only: check the key, read and
 * validate the input, call lib/, and turn the result or the error into a Response. It never
 * throws; every failure becomes a JSON error with a request id that the log line carries too.
 */
import { authorize, type Scope } from "../lib/auth.js";
import { parseChangesQuery, readChanges } from "../lib/changes.js";
import { type Config, getConfig } from "../lib/config.js";
import { getDatabase } from "../lib/db/client.js";
import { invalidRequest, methodNotAllowed, toErrorResponse } from "../lib/errors.js";
import { checkJunkPatternsOnce, getGuardrails } from "../lib/guardrails.js";
import { jsonResponse, readJsonBody } from "../lib/http.js";
import { identify, toContactBody } from "../lib/identify.js";
import { parseIdentifyRequest } from "../lib/input.js";
import { log } from "../lib/log.js";

/** Largest accepted request body. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** Handles one request; resolves to a Response on every path. */
async function handleIdentify(request: Request): Promise<Response> {
  const started = performance.now();
  const requestId = crypto.randomUUID();
  let response: Response;
  let fields: Record<string, unknown> = {};
  try {
    // An invalid setting fails every request as 500 misconfigured, before anything else: so
    // does a deployment left open (no API_KEYS, no ALLOW_PUBLIC_ACCESS) or reaching its
    // database in clear. The log line names the setting, and the answer names no customer.
    const config = authorized(request, "identify");
    const guardrails = getGuardrails();
    if (request.method !== "POST") throw methodNotAllowed(["POST"]);
    const parsed = parseIdentifyRequest(await readJsonBody(request, BODY_LIMIT_BYTES));
    if (!parsed.success) throw invalidRequest(parsed.issues);

    const db = await getDatabase();
    await checkJunkPatternsOnce(db);
    const { outcome, customer } = await identify(db, parsed.input, {
      lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
      deadlineMs: config.DB_QUERY_TIMEOUT_MS,
      requestId,
      guardrails,
    });
    fields = { outcome, primaryContactId: customer.primaryContactId };
    response = jsonResponse(toContactBody(customer), { headers: { "X-Request-Id": requestId } });
  } catch (error) {
    ({ response, log: fields } = toErrorResponse(error, requestId));
  }
  log(response.status >= 500 ? "error" : "info", "identify", {
    requestId,
    method: request.method,
    status: response.status,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    ...fields,
  });
  return response;
}

/**
 * The access check every route makes first, for the route's scope (lib/auth.ts). An invalid setting fails every request as 500
 * misconfigured, before anything else: never served without the keys or guardrails it was
 * meant to have.
 * @throws ConfigError, or HttpError 401.
 */
function authorized(request: Request, scope: Scope): Config {
  const config = getConfig();
  getGuardrails();
  authorize(request, config, scope);
  return config;
}

/** GET /identify/changes: one page of the change feed (lib/changes.ts). */
async function handleChanges(request: Request): Promise<Response> {
  const started = performance.now();
  const requestId = crypto.randomUUID();
  let response: Response;
  let fields: Record<string, unknown> = {};
  try {
    authorized(request, "feed");
    if (request.method !== "GET") throw methodNotAllowed(["GET"]);
    const query = parseChangesQuery(new URL(request.url).searchParams);
    const page = await readChanges(await getDatabase(), query);
    fields = { outcome: "read", changes: page.changes.length };
    response = jsonResponse(page, { headers: { "X-Request-Id": requestId } });
  } catch (error) {
    ({ response, log: fields } = toErrorResponse(error, requestId));
  }
  log(response.status >= 500 ? "error" : "info", "changes", {
    requestId,
    method: request.method,
    status: response.status,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    ...fields,
  });
  return response;
}

/** The feed's paths, /identify/changes and /api/identify/changes, with or without a slash. */
const CHANGES_PATH = /^[^?#]*\/identify\/changes\/?(?:[?#]|$)/;

/**
 * Every request of the function: the deployment routes /identify, /identify/changes and
 * their /api forms here (scripts/build-function.ts) and the request keeps its own URL.
 */
function handleRequest(request: Request): Promise<Response> {
  return CHANGES_PATH.test(request.url) ? handleChanges(request) : handleIdentify(request);
}

export default { fetch: handleRequest };
