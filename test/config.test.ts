/**
 * The configuration: every refusal names its variable and never quotes a key, and the
 * Vercel handler answers a misconfigured deployment with 500 instead of serving it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { isVercelDeployment, readConfig } from "../lib/config.js";
import { driverFor } from "../lib/db/client.js";
import { SSL_MODES, usesNodePostgres } from "../lib/db/database-url.js";
import { ConfigError } from "../lib/errors.js";
import { guardrailsFrom, splitJunkList } from "../lib/guardrails.js";
import { isLoopbackHost } from "../lib/hosts.js";
import { parsedUrl } from "./support/database-url.js";
import { postIdentify } from "./support/http.js";

const KEY = "k3y-for-tests-0123456789";

describe("API_KEYS", () => {
  it.each([",", " , ", ",,"])("refuses %j, which names no key, naming API_KEYS", (value) => {
    expect(() => readConfig({ API_KEYS: value })).toThrow(/API_KEYS: names no key/);
  });

  it("refuses a key with a space inside, without quoting it", () => {
    const attempt = () => readConfig({ API_KEYS: `${KEY}, first-half-of-a-key second-half` });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid environment: API_KEYS: a key has a space/);
    expect(attempt).not.toThrow(/half/);
  });

  it("refuses a short key without quoting it", () => {
    expect(() => readConfig({ API_KEYS: "short-key" })).toThrow(/API_KEYS: .*16 characters/);
    expect(() => readConfig({ API_KEYS: "short-key" })).not.toThrow(/short-key/);
  });

  it("reads comma-separated keys, ignoring spaces around them and empty entries", () => {
    expect(readConfig({ API_KEYS: ` ${KEY} ,, second-key-abcdefghijklmnop,` }).API_KEYS).toEqual([
      KEY,
      "second-key-abcdefghijklmnop",
    ]);
  });
});

describe("DATABASE_URL", () => {
  it("refuses a value that is no URL without quoting its password", () => {
    const attempt = () =>
      readConfig({ DATABASE_URL: "postgres://app:s3cret-pw@db:99999/identify" });
    expect(attempt).toThrow(/^Invalid environment: DATABASE_URL: /);
    expect(attempt).not.toThrow(/s3cret-pw/);
  });
});

/** A Vercel deployment's environment: a production one unless `env` says otherwise. */
const onVercel = (env: Record<string, string> = {}) => ({
  VERCEL: "1",
  VERCEL_ENV: "production",
  ...env,
});

describe("a Vercel deployment without access control", () => {
  it.each(["production", "preview"])(
    "refuses a %s deployment without API_KEYS, naming API_KEYS and ALLOW_PUBLIC_ACCESS",
    (environment) => {
      const attempt = () => readConfig(onVercel({ VERCEL_ENV: environment }));
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(/^Invalid environment: API_KEYS: this Vercel deployment/);
      expect(attempt).toThrow(/Set API_KEYS .*or set ALLOW_PUBLIC_ACCESS=true/);
    },
  );

  it("refuses a build that sets VERCEL without VERCEL_ENV, as a hand-run vercel build --prod does", () => {
    expect(() => readConfig({ VERCEL: "1" })).toThrow(/API_KEYS: this Vercel deployment/);
  });

  it("lets vercel dev (VERCEL_ENV=development) and a machine without VERCEL run without keys", () => {
    expect(readConfig(onVercel({ VERCEL_ENV: "development" })).API_KEYS).toBeUndefined();
    expect(readConfig({ VERCEL_ENV: "production" }).API_KEYS).toBeUndefined();
    expect(readConfig({}).API_KEYS).toBeUndefined();
  });

  it("counts VERCEL as set only when it is not blank, as every other variable", () => {
    expect(isVercelDeployment(readConfig({ VERCEL: " " }))).toBe(false);
    expect(isVercelDeployment({ VERCEL: "1", VERCEL_ENV: "preview" })).toBe(true);
  });

  it("accepts a deployment with API_KEYS", () => {
    expect(readConfig(onVercel({ API_KEYS: KEY })).API_KEYS).toEqual([KEY]);
  });

  it("accepts a deployment opened on purpose with ALLOW_PUBLIC_ACCESS=true", () => {
    const config = readConfig(onVercel({ ALLOW_PUBLIC_ACCESS: " true " }));
    expect(config.ALLOW_PUBLIC_ACCESS).toBe(true);
    expect(config.API_KEYS).toBeUndefined();
  });

  it.each(["false", "1", "yes", "TRUE", "True"])(
    "refuses ALLOW_PUBLIC_ACCESS=%j, naming the variable: only true opens a deployment",
    (value) => {
      const attempt = () => readConfig(onVercel({ ALLOW_PUBLIC_ACCESS: value }));
      expect(attempt).toThrow(/^Invalid environment: ALLOW_PUBLIC_ACCESS: only "true" is accepted/);
    },
  );

  it("refuses ALLOW_PUBLIC_ACCESS=true together with API_KEYS as a contradiction, anywhere", () => {
    for (const env of [onVercel(), {}]) {
      const attempt = () => readConfig({ ...env, API_KEYS: KEY, ALLOW_PUBLIC_ACCESS: "true" });
      expect(attempt).toThrow(/ALLOW_PUBLIC_ACCESS: set together with API_KEYS, which contradicts/);
      expect(attempt).not.toThrow(/k3y/);
    }
  });
});

describe("TLS to the database from a Vercel deployment", () => {
  const open = (env: Record<string, string>) => onVercel({ API_KEYS: KEY, ...env });

  it.each([
    ["no sslmode", "postgres://app:s3cret-pw@db.example.com:5432/identify"],
    ["sslmode=disable", "postgres://app:s3cret-pw@db.example.com/identify?sslmode=disable"],
    ["sslmode=allow", "postgres://app:s3cret-pw@db.example.com/identify?sslmode=allow"],
    ["sslmode=prefer", "postgres://app:s3cret-pw@10.0.0.5/identify?sslmode=prefer"],
  ])(
    "refuses a node-postgres DATABASE_URL with %s, naming the fix and quoting no password",
    (_, url) => {
      const attempt = () => readConfig(open({ DATABASE_URL: url }));
      expect(attempt).toThrow(/^Invalid environment: DATABASE_URL: on a Vercel deployment/);
      expect(attempt).toThrow(/sslmode=verify-full .*ALLOW_PLAINTEXT_DATABASE=true/);
      expect(attempt).not.toThrow(/s3cret-pw/);
    },
  );

  it("refuses a plaintext DATABASE_URL_UNPOOLED, which the deploy build migrates through", () => {
    const attempt = () =>
      readConfig(
        open({
          DATABASE_URL: "postgres://app:pw@db.example.com/identify?sslmode=verify-full",
          DATABASE_URL_UNPOOLED: "postgres://app:pw@direct.example.com/identify",
        }),
      );
    expect(attempt).toThrow(/^Invalid environment: DATABASE_URL_UNPOOLED: on a Vercel deployment/);
  });

  it("refuses a loopback URL whose ?host= sends it to another machine", () => {
    const url = "postgres://app:pw@localhost/identify?host=db.example.com";
    expect(parsedUrl(url).host).toBe("db.example.com");
    expect(() => readConfig(open({ DATABASE_URL: url }))).toThrow(/DATABASE_URL: on a Vercel/);
  });

  it("takes the last sslmode, as node-postgres does", () => {
    const url = "postgres://app:pw@db.example.com/identify?sslmode=require&sslmode=disable";
    expect(() => readConfig(open({ DATABASE_URL: url }))).toThrow(/sslmode=disable/);
  });

  it.each(["require", "verify-ca", "verify-full"])("accepts sslmode=%s", (mode) => {
    const url = `postgres://app:pw@db.example.com/identify?sslmode=${mode}`;
    const config = readConfig(open({ DATABASE_URL: url, DATABASE_URL_UNPOOLED: url }));
    expect(config.DATABASE_URL?.sslmode).toBe(mode);
  });

  it.each([
    "postgres://postgres@127.0.0.1:5432/identify",
    "postgres://postgres@127.8.9.10/identify",
    "postgres://postgres@[::1]/identify",
    "postgres://postgres@localhost/identify",
    "postgres://postgres@db.example.com/identify?host=/var/run/postgresql",
    "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/identify",
  ])("accepts %s without TLS: it never leaves the machine", (url) => {
    expect(readConfig(open({ DATABASE_URL: url })).DATABASE_URL?.host).toBe(parsedUrl(url).host);
  });

  it("accepts the Neon driver's URLs, which always go through TLS", () => {
    const neon = "postgres://app:pw@ep-x-123.us-east-2.aws.neon.tech/identify";
    expect(readConfig(open({ DATABASE_URL: neon })).DATABASE_URL?.host).toMatch(/neon\.tech$/);
    const proxied = {
      DATABASE_URL: "postgres://app:pw@db.example.com/x",
      NEON_WS_PROXY: "wss://p.example.com",
    };
    expect(readConfig(open(proxied)).DATABASE_URL?.host).toBe("db.example.com");
  });

  it("accepts a plaintext URL with ALLOW_PLAINTEXT_DATABASE=true, and only true", () => {
    const url = "postgres://app:pw@db.example.com/identify";
    const allowed = readConfig(open({ DATABASE_URL: url, ALLOW_PLAINTEXT_DATABASE: "true" }));
    expect(allowed.ALLOW_PLAINTEXT_DATABASE).toBe(true);
    expect(() => readConfig(open({ DATABASE_URL: url, ALLOW_PLAINTEXT_DATABASE: "yes" }))).toThrow(
      /^Invalid environment: ALLOW_PLAINTEXT_DATABASE: only "true" is accepted/,
    );
  });

  it("accepts a plaintext URL off Vercel and under vercel dev", () => {
    const url = "postgres://app:pw@db.example.com/identify";
    expect(readConfig({ DATABASE_URL: url }).DATABASE_URL?.sslmode).toBeUndefined();
    expect(
      readConfig(onVercel({ VERCEL_ENV: "development", DATABASE_URL: url })).DATABASE_URL?.host,
    ).toBe("db.example.com");
  });

  it("agrees with the database client on which URLs node-postgres opens", () => {
    const cases: [string, string | undefined][] = [
      ["postgres://a@db.example.com/x", undefined],
      ["postgres://a@ep-x.us-east-2.aws.neon.tech/x", undefined],
      ["postgres://a@ep-x.neon.build/x", undefined],
      ["postgres://a@EP-X.NEON.TECH/x", undefined],
      ["postgres://a@db.example.com/x", "wss://proxy.example.com"],
      ["postgres://a@neon.tech.example.com/x", undefined],
    ];
    for (const [url, proxy] of cases) {
      const config = { DATABASE_URL: parsedUrl(url), NEON_WS_PROXY: proxy };
      const expected = driverFor(config) === "node-postgres";
      expect(usesNodePostgres(config.DATABASE_URL, proxy), url).toBe(expected);
    }
  });
});

describe("sslmode in DATABASE_URL and DATABASE_URL_UNPOOLED", () => {
  it.each(["DATABASE_URL", "DATABASE_URL_UNPOOLED"])(
    "refuses an sslmode libpq does not know in %s, listing the valid ones without quoting the URL",
    (name) => {
      const attempt = () => readConfig({ [name]: "postgres://app:s3cret-pw@db/x?sslmode=verify" });
      expect(attempt).toThrow(
        `Invalid environment: ${name}: sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full`,
      );
      expect(attempt).not.toThrow(/s3cret-pw|verify&|sslmode=verify\b/);
    },
  );

  it("refuses node-postgres's own no-verify, which libpq does not know", () => {
    expect(() => readConfig({ DATABASE_URL: "postgres://a@db/x?sslmode=no-verify" })).toThrow(
      /DATABASE_URL: sslmode must be one of/,
    );
  });

  it("accepts every libpq sslmode", () => {
    for (const mode of SSL_MODES) {
      const url = `postgres://a@db/x?sslmode=${mode}`;
      expect(
        readConfig({ DATABASE_URL: url, DATABASE_URL_UNPOOLED: url }).DATABASE_URL?.sslmode,
      ).toBe(mode);
    }
  });
});

describe("loopback hosts", () => {
  it("counts only 127.0.0.0/8, ::1 and localhost as loopback", () => {
    for (const host of [
      "127.0.0.1",
      "127.255.0.1",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "localhost",
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of [
      "0.0.0.0",
      "::",
      "128.0.0.1",
      "10.0.0.1",
      "localhost.example.com",
      "fe80::1",
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

describe("NEON_WS_PROXY", () => {
  it("refuses a value that is no URL as a ConfigError naming NEON_WS_PROXY", () => {
    const attempt = () => readConfig({ NEON_WS_PROXY: "not a url" });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^Invalid environment: NEON_WS_PROXY: NEON_WS_PROXY must be a URL$/);
  });
});

describe("junk lists", () => {
  it("keeps a comma inside a /pattern/ as part of it", () => {
    expect(splitJunkList("/^0{6,}$/, 1234567890,/^x{1,2}@/")).toEqual({
      values: ["1234567890"],
      patterns: ["^0{6,}$", "^x{1,2}@"],
    });
  });

  it("ends a pattern only at a slash followed by a comma or the end, so [/], stays inside", () => {
    expect(splitJunkList("/^a[/],b/,c@x.io")).toEqual({
      values: ["c@x.io"],
      patterns: ["^a[/],b"],
    });
  });

  it.each([
    ["/^noreply@", /JUNK_EMAILS: the pattern \/\^noreply@ has no closing "\/"/],
    ["//", /JUNK_EMAILS: \/\/ is an empty pattern/],
  ])("refuses JUNK_EMAILS=%j, naming the variable", (value, message) => {
    expect(() => guardrailsFrom(readConfig({ JUNK_EMAILS: value }))).toThrow(message);
  });

  it("refuses an exact junk value that is not an identifier, naming the variable", () => {
    const config = readConfig({ JUNK_PHONE_NUMBERS: "/^0+$/, call-me" });
    expect(() => guardrailsFrom(config)).toThrow(ConfigError);
    expect(() => guardrailsFrom(config)).toThrow(/JUNK_PHONE_NUMBERS: "call-me" is not/);
  });

  it("normalizes exact junk values like requests and keeps patterns as written", () => {
    const config = readConfig({ JUNK_EMAILS: " Test@Test.com ,/^No,Reply@/" });
    expect(guardrailsFrom(config)).toEqual({
      junkEmails: ["test@test.com"],
      junkEmailPatterns: ["^No,Reply@"],
      maxContacts: 1000,
    });
  });

  it("turns the customer cap on at 1000 contacts when MAX_CONTACTS_PER_CUSTOMER is unset", () => {
    expect(guardrailsFrom(readConfig({})).maxContacts).toBe(1000);
  });
});

describe("the Vercel handler with a setting it must refuse", () => {
  afterEach(() => {
    delete process.env.API_KEYS;
  });

  it("answers every request with 500 misconfigured instead of serving it without keys", async () => {
    process.env.API_KEYS = " , ";
    vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await postIdentify({ email: "doc@x.io" });
        expect(response.status).toBe(500);
        const body = (await response.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe("misconfigured");
        expect(body.error.message).not.toContain("API_KEYS");
      }
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("answers 500 misconfigured, naming no customer, on a production deployment without API_KEYS", async () => {
    Object.assign(process.env, { VERCEL: "1", VERCEL_ENV: "production" });
    const failed = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await postIdentify({ email: "doc@x.io" });
      expect(response.status).toBe(500);
      const body = (await response.json()) as Record<string, { code: string }>;
      expect(body.error?.code).toBe("misconfigured");
      expect(body).not.toHaveProperty("contact");
      const line = JSON.parse(String(failed.mock.calls[0]?.[0])) as Record<string, unknown>;
      expect(line.error).toMatch(/^Invalid environment: API_KEYS: this Vercel deployment/);
      expect(line.error).toMatch(/ALLOW_PUBLIC_ACCESS=true/);
    } finally {
      vi.restoreAllMocks();
      delete process.env.VERCEL;
      delete process.env.VERCEL_ENV;
    }
  });

  it("logs one line per request naming the variable, and no key", async () => {
    process.env.API_KEYS = `${KEY}, first-half-of-a-key second-half`;
    const failed = vi.spyOn(console, "error").mockImplementation(() => {});
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await postIdentify({ email: "doc@x.io" });
      expect(logged).not.toHaveBeenCalled();
      expect(failed).toHaveBeenCalledTimes(1);
      const line = JSON.parse(String(failed.mock.calls[0]?.[0])) as Record<string, unknown>;
      expect(line).toMatchObject({ status: 500, code: "misconfigured", outcome: "rejected" });
      expect(line.error).toMatch(/^Invalid environment: API_KEYS: /);
      expect(JSON.stringify(line)).not.toMatch(/half|k3y/);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
