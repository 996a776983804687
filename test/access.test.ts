/**
 * The handler with every opt-in feature configured through the environment: API keys,
 * junk values and the customer cap. (Their behaviour in the database is covered in
 * test/suites/audit.ts; this file checks the wiring and the HTTP answers.)
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { readConfig } from "../lib/config.js";
import { getDatabase } from "../lib/db/client.js";
import { checkJunkPatterns } from "../lib/guardrails.js";
import { serveScratchDatabase } from "./support/databases.js";
import { postIdentify } from "./support/http.js";

const KEY = "k3y-for-tests-0123456789";
const OTHER_KEY = "second-key-abcdefghijklmnop";

const post = (body: unknown, authorization?: string) =>
  postIdentify(body, authorization ? { headers: { Authorization: authorization } } : {});

describe("POST /identify with API keys, junk values and a cap configured", () => {
  serveScratchDatabase();
  beforeAll(() => {
    process.env.API_KEYS = `${KEY}, ${OTHER_KEY}`;
    process.env.JUNK_EMAILS = "Test@Test.com, /^noreply@/";
    // A comma inside a pattern belongs to it: the pattern runs to the "/" before a comma.
    process.env.JUNK_PHONE_NUMBERS = "/^0{3,}$/";
    process.env.MAX_CONTACTS_PER_CUSTOMER = "2";
  });

  it("answers 401 with a bearer challenge when no key is sent", async () => {
    const response = await post({ email: "a@x.io" });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="identify"');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      "unauthorized",
    );
  });

  it("answers 401 invalid_token for a wrong key", async () => {
    const response = await post({ email: "a@x.io" }, "Bearer not-the-key-at-all-000");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("refuses a key sent with another scheme", async () => {
    expect((await post({ email: "a@x.io" }, `Basic ${KEY}`)).status).toBe(401);
  });

  it("serves a request that carries any of the configured keys", async () => {
    expect((await post({ email: "a@x.io" }, `Bearer ${KEY}`)).status).toBe(200);
    expect((await post({ email: "a@x.io" }, `bearer ${OTHER_KEY}`)).status).toBe(200);
  });

  it("never writes a key to the log", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      await post({ email: "a@x.io" }, `Bearer ${KEY}`);
      await post({ email: "a@x.io" }, "Bearer wrong-key-that-is-long-enough");
      const text = logged.mock.calls.map((call) => String(call[0])).join("\n");
      expect(text).not.toContain(KEY);
      expect(text).not.toContain("wrong-key-that-is-long-enough");
      expect(text).toContain('"status":401');
    } finally {
      logged.mockRestore();
    }
  });

  /** The primary contact id each body gets, sent one after the other with a key. */
  async function primaryIds(...bodies: object[]): Promise<number[]> {
    const ids: number[] = [];
    for (const body of bodies) {
      const response = await post(body, `Bearer ${KEY}`);
      ids.push(
        ((await response.json()) as { contact: { primaryContactId: number } }).contact
          .primaryContactId,
      );
    }
    return ids;
  }

  it("does not link customers through a configured junk email, whatever its case", async () => {
    const [a, b] = await primaryIds(
      { email: "TEST@test.com", phoneNumber: "111" },
      { email: "test@test.com", phoneNumber: "222" },
    );
    expect(b).not.toBe(a);
  });

  it("does not link customers through a phone number matching a junk pattern that has a comma", async () => {
    const [a, b] = await primaryIds(
      { email: "zero1@x.io", phoneNumber: "0000" },
      { email: "zero2@x.io", phoneNumber: "0000" },
    );
    expect(b).not.toBe(a);
  });

  it("has PostgreSQL refuse a junk pattern it cannot compile, naming the variable", async () => {
    const config = readConfig({ JUNK_PHONE_NUMBERS: "/(?<n>0)/" });
    await expect(checkJunkPatterns(await getDatabase(), config)).rejects.toThrow(
      /JUNK_PHONE_NUMBERS: PostgreSQL refuses the pattern \/\(\?<n>0\)\//,
    );
  });

  it("accepts a junk pattern that PostgreSQL compiles and JavaScript would not", async () => {
    const pattern = "(?i)^noreply@";
    expect(() => new RegExp(pattern)).toThrow(SyntaxError);
    const config = readConfig({ JUNK_EMAILS: `/${pattern}/` });
    await expect(checkJunkPatterns(await getDatabase(), config)).resolves.toBeUndefined();
  });

  it("answers 409 naming the cap when a request would grow a customer past it", async () => {
    await post({ email: "cap1@x.io", phoneNumber: "777" }, `Bearer ${KEY}`);
    await post({ email: "cap2@x.io", phoneNumber: "777" }, `Bearer ${KEY}`);
    const response = await post({ email: "cap3@x.io", phoneNumber: "777" }, `Bearer ${KEY}`);
    expect(response.status).toBe(409);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("customer_too_large");
    expect(body.error.message).toContain("more than 2 contacts (MAX_CONTACTS_PER_CUSTOMER)");
  });
});
