/**
 * The configuration: every refusal names its variable and never quotes a key, and the
 * Vercel handler answers a misconfigured deployment with 500 instead of serving it.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { LOOPBACK_HOSTS, readConfig, readServerConfig, splitJunkList } from "../lib/config.js";
import { ConfigError } from "../lib/errors.js";
import { guardrailsFrom } from "../lib/guardrails.js";
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

describe("PORT and HOST", () => {
  it.each(["abc", "70000", "-1", "3000.5", "30 00"])("refuses PORT=%j, naming PORT", (value) => {
    expect(() => readServerConfig({ PORT: value })).toThrow(
      /^Invalid environment: PORT: must be a port number from 0 to 65535$/,
    );
  });

  it("reads PORT as a number, 3000 by default, and 0 for any free port", () => {
    expect(readServerConfig({}).PORT).toBe(3000);
    expect(readServerConfig({ PORT: " 8080 " }).PORT).toBe(8080);
    expect(readServerConfig({ PORT: "0" }).PORT).toBe(0);
  });

  it.each(["not a host", "http://localhost", "localhost:3000", "-x.example"])(
    "refuses HOST=%j, naming HOST",
    (value) => {
      expect(() => readServerConfig({ HOST: value })).toThrow(/^Invalid environment: HOST: /);
    },
  );

  it("reads HOST as an IP address or a name, 127.0.0.1 by default", () => {
    expect(readServerConfig({}).HOST).toBe("127.0.0.1");
    for (const host of ["0.0.0.0", "::", "::1", "localhost", "identify.internal"]) {
      expect(readServerConfig({ HOST: host }).HOST).toBe(host);
    }
  });
});

describe("ALLOWED_HOSTS", () => {
  it("is the loopback names when unset", () => {
    expect(readServerConfig({}).ALLOWED_HOSTS).toEqual(LOOPBACK_HOSTS);
  });

  it("reads host names as URLs spell them: lower case, IPv6 in brackets", () => {
    expect(
      readServerConfig({ ALLOWED_HOSTS: "Identify.Example.com, [::1] ,10.0.0.5" }).ALLOWED_HOSTS,
    ).toEqual(["identify.example.com", "[::1]", "10.0.0.5"]);
  });

  it("reads * as any host", () => {
    expect(readServerConfig({ ALLOWED_HOSTS: "*" }).ALLOWED_HOSTS).toEqual(["*"]);
  });

  it.each(["localhost:3000", "http://identify.example", "identify.example/path", "::1", ","])(
    "refuses %j, naming ALLOWED_HOSTS",
    (value) => {
      expect(() => readServerConfig({ ALLOWED_HOSTS: value })).toThrow(
        /^Invalid environment: ALLOWED_HOSTS: /,
      );
    },
  );
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
    expect(() => readConfig({ JUNK_EMAILS: value })).toThrow(message);
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
