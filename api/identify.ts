/**
 * POST /identify (also /api/identify) and GET /identify/changes, the change feed (also
 * /api/identify/changes): the one Vercel Function. Glue only: one wrapper (handleRequest)
 * finds the route (lib/routes.ts), checks the key and the method, runs the route's handler
 * and turns its answer or its error into a Response with a request id and one log line;
 * each handler reads its input, calls lib/ and says what its log line adds. It never throws:
 * every failure becomes a JSON error whose request id the log line carries too.
 */
import { authorize } from "../lib/auth.js";
import { parseChangesQuery, readChanges } from "../lib/changes.js";
import { type Config, getConfig } from "../lib/config.js";
import { getDatabase } from "../lib/db/client.js";
import { methodNotAllowed, notFound, toErrorResponse } from "../lib/errors.js";
import { checkJunkPatternsOnce, type Guardrails, getGuardrails } from "../lib/guardrails.js";
import { jsonResponse, readJsonBody } from "../lib/http.js";
import { identify, toContactBody } from "../lib/identify.js";
import { parseIdentifyRequest } from "../lib/input.js";
import { log } from "../lib/log.js";
import { type RouteName, routeOf } from "../lib/routes.js";

/** Largest accepted request body. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** What the wrapper hands every handler: the request and what it has read for it, once. */
interface RequestContext {
  request: Request;
  requestId: string;
  config: Config;
  guardrails: Guardrails;
}

/** A handler's success: the 200 body, and the fields its log line adds. */
interface Answer {
  body: unknown;
  log: Record<string, unknown>;
}

/** POST /identify: the customer the body's email and phone number belong to. */
async function handleIdentify(context: RequestContext): Promise<Answer> {
  const { request, requestId, config, guardrails } = context;
  const input = parseIdentifyRequest(await readJsonBody(request, BODY_LIMIT_BYTES));
  const db = await getDatabase();
  await checkJunkPatternsOnce(db);
  const { outcome, customer } = await identify(db, input, {
    lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
    deadlineMs: config.DB_QUERY_TIMEOUT_MS,
    requestId,
    guardrails,
  });
  return {
    body: toContactBody(customer),
    log: { outcome, primaryContactId: customer.primaryContactId },
  };
}

/** GET /identify/changes: one page of the change feed (lib/changes.ts). */
async function handleChanges({ request }: RequestContext): Promise<Answer> {
  const query = parseChangesQuery(new URL(request.url).searchParams);
  const page = await readChanges(await getDatabase(), query);
  return { body: page, log: { outcome: "read", changes: page.changes.length } };
}

/** Each route's handler, by the route's name in lib/routes.ts. */
const HANDLERS: Record<RouteName, (context: RequestContext) => Promise<Answer>> = {
  identify: handleIdentify,
  changes: handleChanges,
};

/**
 * Every request of the function, whichever route: the deployment routes each path of
 * lib/routes.ts here (scripts/build-function.ts) and the request keeps its own URL; any other
 * path is a 404. Then the access check comes before everything else: an invalid setting fails
 * every request as 500 misconfigured (so does a deployment left open, with no API_KEYS and no
 * ALLOW_PUBLIC_ACCESS, or reaching its database in clear), and a request without its key gets
 * 401 before any 405.
 */
async function handleRequest(request: Request): Promise<Response> {
  const started = performance.now();
  const requestId = crypto.randomUUID();
  const { pathname } = new URL(request.url);
  const route = routeOf(pathname);
  let guardrails: Guardrails | undefined;
  let response: Response;
  let fields: Record<string, unknown> = {};
  try {
    if (!route) throw notFound(pathname);
    const config = getConfig();
    guardrails = getGuardrails();
    authorize(request, config, route.scope);
    if (request.method !== route.method) throw methodNotAllowed([route.method]);
    const answer = await HANDLERS[route.name]({ request, requestId, config, guardrails });
    fields = answer.log;
    response = jsonResponse(answer.body, { headers: { "X-Request-Id": requestId } });
  } catch (error) {
    ({ response, log: fields } = toErrorResponse(error, requestId, {
      maxContacts: guardrails?.maxContacts,
    }));
  }
  log(response.status >= 500 ? "error" : "info", route?.name ?? "request", {
    requestId,
    method: request.method,
    status: response.status,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
    ...fields,
  });
  return response;
}

export default { fetch: handleRequest };
