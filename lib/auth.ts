/**
 * Access control: with API keys configured, every request must carry one as a bearer token.
 * The endpoint returns personal data (every email and phone number of a customer), so the
 * configuration (lib/config.ts) refuses a Vercel deployment, or `npm start` on a public
 * interface, without keys unless ALLOW_PUBLIC_ACCESS=true says so on purpose: by the time a
 * request gets here, no keys means someone chose to serve without them. Keys are never logged.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { unauthorized } from "./errors.js";

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

/**
 * Checks the request's bearer token against the configured keys in constant time
 * (comparing fixed-length digests, and always against every key).
 * @throws HttpError 401 with WWW-Authenticate when a key is configured and none matches.
 */
export function authorize(request: Request, apiKeys: readonly string[] | undefined): void {
  if (!apiKeys || apiKeys.length === 0) return;
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  const presented = digest(match?.[1] ?? "");
  let granted = false;
  for (const key of digestsOf(apiKeys)) granted = timingSafeEqual(presented, key) || granted;
  if (!granted || !match) throw unauthorized(match ? "invalid_token" : undefined);
}
