/**
 * POST /identify (also /api/identify): the Vercel Function. Glue only: read the body,
 * validate it, call the reconciler, and turn the result or the error into a Response.
 * It never throws; every failure becomes a JSON error with a request id that the log
 * line carries too.
 */
import { authorize } from "../lib/auth.js";
import { getConfig } from "../lib/config.js";
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
    // An invalid setting fails every request as 500 misconfigured, before anything else:
    // never served without the keys or guardrails it was meant to have. So does a deployment
    // left open (no API_KEYS, no ALLOW_PUBLIC_ACCESS) or reaching its database in clear: the
    // log line names the setting, and the answer names no customer.
    const config = getConfig();
    const guardrails = getGuardrails();
    authorize(request, config.API_KEYS);
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

export default { fetch: handleIdentify };
