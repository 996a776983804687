/**
 * Least privilege for the change feed: a key of FEED_API_KEYS reads GET /identify/changes and
 * nothing else, a key of API_KEYS reads both, and feed keys alone never open POST /identify,
 * on the handler, in the access check, and in the deployment rules.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { authorize } from "../lib/auth.js";
import { readConfig } from "../lib/config.js";
import { HttpError } from "../lib/errors.js";
import { readServerConfig } from "../scripts/server-config.js";
import { getChanges, pageOf } from "./support/changes.js";
import { serveScratchDatabase } from "./support/databases.js";
import { postIdentify } from "./support/http.js";

const KEY = "k3y-for-tests-0123456789";
const FEED_KEY = "feed-k3y-for-tests-0123456789";
const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe("the handler with API_KEYS and FEED_API_KEYS", () => {
  serveScratchDatabase();
  beforeAll(() => {
    process.env.API_KEYS = KEY;
    process.env.FEED_API_KEYS = FEED_KEY;
  });

  it("answers a feed key on POST /identify 401 invalid_token, and writes nothing", async () => {
    const response = await postIdentify(
      { email: "doc@hillvalley.edu" },
      { headers: bearer(FEED_KEY) },
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(await response.text()).not.toContain("hillvalley");
    expect((await pageOf(await getChanges({}, bearer(FEED_KEY)))).changes).toEqual([]);
  });

  it("serves a feed key the change feed", async () => {
    expect((await getChanges({}, bearer(FEED_KEY))).status).toBe(200);
  });

  it("serves a key of API_KEYS both POST /identify and the change feed", async () => {
    expect(
      (await postIdentify({ email: "marty@hillvalley.edu" }, { headers: bearer(KEY) })).status,
    ).toBe(200);
    const page = await pageOf(await getChanges({}, bearer(KEY)));
    expect(page.changes.map((change) => change.kind)).toEqual(["created"]);
  });

  it("answers the change feed 401 without a key", async () => {
    expect((await getChanges()).status).toBe(401);
  });
});

describe("the access check with FEED_API_KEYS alone", () => {
  const keys = { FEED_API_KEYS: [FEED_KEY] };
  const request = (headers: Record<string, string> = {}) =>
    new Request("http://localhost/identify", { method: "POST", headers });
  const statusOf = (run: () => void) => {
    try {
      run();
      return 200;
    } catch (error) {
      return error instanceof HttpError ? error.status : 500;
    }
  };

  it("opens POST /identify to no request, keyless or with the feed key", () => {
    expect(statusOf(() => authorize(request(), keys, "identify"))).toBe(401);
    expect(statusOf(() => authorize(request(bearer(FEED_KEY)), keys, "identify"))).toBe(401);
  });

  it("opens the feed to the feed key only", () => {
    expect(statusOf(() => authorize(request(bearer(FEED_KEY)), keys, "feed"))).toBe(200);
    expect(statusOf(() => authorize(request(), keys, "feed"))).toBe(401);
    expect(statusOf(() => authorize(request(bearer(KEY)), keys, "feed"))).toBe(401);
  });
});

describe("the deployment rules with FEED_API_KEYS alone", () => {
  it("refuse a Vercel deployment, naming API_KEYS: feed keys do not open POST", () => {
    const attempt = () =>
      readConfig({ VERCEL: "1", VERCEL_ENV: "production", FEED_API_KEYS: FEED_KEY });
    expect(attempt).toThrow(
      /API_KEYS: this Vercel deployment \(production\) has no access control/,
    );
    expect(attempt).toThrow(/FEED_API_KEYS opens the change feed only/);
    expect(attempt).not.toThrow(/feed-k3y/);
  });

  it("refuse npm start on a HOST other machines reach, naming API_KEYS", () => {
    expect(() => readServerConfig({ HOST: "0.0.0.0", FEED_API_KEYS: FEED_KEY })).toThrow(
      /API_KEYS: required to listen on HOST=0\.0\.0\.0/,
    );
  });

  it("refuse ALLOW_PUBLIC_ACCESS=true beside them, as a contradiction", () => {
    expect(() => readConfig({ ALLOW_PUBLIC_ACCESS: "true", FEED_API_KEYS: FEED_KEY })).toThrow(
      /ALLOW_PUBLIC_ACCESS: set together with FEED_API_KEYS/,
    );
  });

  it("check FEED_API_KEYS as API_KEYS are checked, quoting no key", () => {
    expect(() => readConfig({ FEED_API_KEYS: "short-feed" })).toThrow(
      /FEED_API_KEYS: .*16 characters/,
    );
    expect(() => readConfig({ FEED_API_KEYS: "short-feed" })).not.toThrow(/short-feed/);
  });
});
