/**
 * Access control: with API keys configured, every request must carry one as a bearer token.
 * The endpoint returns personal data (every email and phone number of a customer), so the
 * configuration (lib/config.ts) refuses a Vercel deployment, or `npm start` on a public
 * interface, without keys unless ALLOW_PUBLIC_ACCESS=true says so on purpose: by the time a
 * request gets here, no keys at all means someone chose to serve without them. Keys are
 * never logged.
 *
 * Two scopes, least privilege for the feed: a key of API_KEYS reads both POST /identify and
 * the change feed; a key of FEED_API_KEYS reads the feed only (ids, never a value), so that a
 * warehouse mirroring the feed holds no key that reads customers' emails and phones. Either
 * list set closes both routes: a deployment with only feed keys serves POST to nobody.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Config } from "./config.js";
import { unauthorized } from "./errors.js";

/** What a request reads: POST /identify (customers' values), or the change feed (ids). */
export type Scope = "identify" | "feed";

const digest = (value: string) => createHash("sha256").update(value).digest();

/** The keys' digests, per configured key list: computed once, not on every request. */
const keyDigests = new WeakMap<readonly string[], Buffer[]>();
const digestsOf = (apiKeys: readonly string[]) => {
  let digests = keyDigests.get(apiKeys);
  if (!digests) {
    digests = apiKeys.map(digest);
    keyDigests.set(apiKeys, digests);
  }
  return digests;
};

/** Whether `presented` is among `keys`, compared with every one of them in constant time. */
function among(presented: Buffer, keys: readonly string[] | undefined): boolean {
  let found = false;
  for (const key of digestsOf(keys ?? [])) found = timingSafeEqual(presented, key) || found;
  return found;
}

/**
 * Checks the request's bearer token against the configured keys in constant time (comparing
 * fixed-length digests, and always against every key of both lists), for `scope`: a key of
 * API_KEYS opens both scopes, a key of FEED_API_KEYS only `feed`.
 * @throws HttpError 401 with WWW-Authenticate when a key is configured and the request
 *   carries none that opens `scope` (a feed key sent to POST /identify is no key there).
 */
export function authorize(
  request: Request,
  keys: Pick<Config, "API_KEYS" | "FEED_API_KEYS">,
  scope: Scope,
): void {
  if (!keys.API_KEYS?.length && !keys.FEED_API_KEYS?.length) return;
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  const presented = digest(match?.[1] ?? "");
  const full = among(presented, keys.API_KEYS);
  const feed = among(presented, keys.FEED_API_KEYS);
  const granted = full || (scope === "feed" && feed);
  if (!granted || !match) throw unauthorized(match ? "invalid_token" : undefined);
}
