/**
 * What POST /identify refuses before it opens the database: the request's method, media
 * type, size, JSON and fields. The handler checks them first, so these run once, with a
 * DATABASE_URL nothing listens on: a request that reached the database would get 503, so
 * every 4xx here was answered without reading or writing anything. The contract on each
 * database is test/suites/handler.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import identify, { BODY_LIMIT_BYTES } from "../api/identify.js";
import { closeDatabase } from "../lib/db/client.js";
import { errorOf, IDENTIFY_URL, postIdentify } from "./support/http.js";

describe("POST /identify, refused before the database", () => {
  beforeAll(() => {
    process.env.DATABASE_URL = "postgres://postgres@127.0.0.1:1/nowhere";
  });
  afterAll(async () => {
    await closeDatabase();
    delete process.env.DATABASE_URL;
  });

  it("answers a valid request 503 here, since its database is unreachable", async () => {
    await errorOf(await postIdentify({ email: "doc@x.io" }), 503, "database_unavailable");
  });

  it("refuses a JSON body sent without Content-Type with 415", async () => {
    // A string body would get text/plain from the Request constructor; bytes get no type.
    const body = new TextEncoder().encode(JSON.stringify({ email: "doc@x.io" }));
    const request = new Request(IDENTIFY_URL, { method: "POST", body });
    expect(request.headers.get("content-type")).toBeNull();
    await errorOf(await identify.fetch(request), 415, "unsupported_media_type");
  });

  it("rejects invalid JSON with 400 invalid_json", async () => {
    await errorOf(await postIdentify("{email:", { raw: true }), 400, "invalid_json");
  });

  it("rejects an empty body with 400 invalid_json", async () => {
    await errorOf(await postIdentify("", { raw: true }), 400, "invalid_json");
  });

  it("rejects a body that is not an object with 400", async () => {
    const error = await errorOf(
      await postIdentify([{ email: "doc@x.io" }]),
      400,
      "invalid_request",
    );
    expect(error.issues).toEqual([{ path: "", message: expect.any(String) }]);
  });

  it.each([
    ["an email of the wrong type", { email: 42 }, "email"],
    ["a phone number of the wrong type", { phoneNumber: true }, "phoneNumber"],
    ["an invalid email", { email: "not-an-email" }, "email"],
    ["an email over 254 characters", { email: `${"a".repeat(250)}@x.io` }, "email"],
    ["a phone number with letters", { phoneNumber: "555-CALL" }, "phoneNumber"],
    ["a phone number over 20 digits", { phoneNumber: "1".repeat(21) }, "phoneNumber"],
    ["a negative phone number", { phoneNumber: -5 }, "phoneNumber"],
    ["a fractional phone number", { phoneNumber: 55.5 }, "phoneNumber"],
    ["an unsafe integer phone number", { phoneNumber: 2 ** 60 }, "phoneNumber"],
  ])("rejects %s with 400 naming the field", async (_name, body, path) => {
    const error = await errorOf(await postIdentify(body), 400, "invalid_request");
    expect(error.issues.map((issue) => issue.path)).toEqual([path]);
  });

  it("asks for a phone number past 2^53 - 1 as a string, not as a whole number", async () => {
    const error = await errorOf(
      await postIdentify({ phoneNumber: 2 ** 53 }),
      400,
      "invalid_request",
    );
    expect(error.issues).toEqual([
      { path: "phoneNumber", message: expect.stringMatching(/send it as a string/) },
    ]);
  });

  it("reports every invalid field at once", async () => {
    const error = await errorOf(
      await postIdentify({ email: "nope", phoneNumber: "x" }),
      400,
      "invalid_request",
    );
    expect(error.issues.map((issue) => issue.path)).toEqual(["email", "phoneNumber"]);
  });

  it.each([
    ["nothing", {}],
    ["two nulls", { email: null, phoneNumber: null }],
    ["empty strings", { email: "", phoneNumber: "" }],
    ["whitespace", { email: "   ", phoneNumber: " \t " }],
  ])("rejects a request that gives %s with 400", async (_name, body) => {
    const error = await errorOf(await postIdentify(body), 400, "invalid_request");
    expect(error.issues).toEqual([
      { path: "", message: expect.stringMatching(/email.*phoneNumber/) },
    ]);
  });

  it.each(["GET", "PUT", "DELETE", "PATCH"])(
    "answers %s with 405 and Allow: POST",
    async (method) => {
      const response = await identify.fetch(new Request(IDENTIFY_URL, { method }));
      expect(response.headers.get("allow")).toBe("POST");
      await errorOf(response, 405, "method_not_allowed");
    },
  );

  it("rejects a declared body over 16 KiB with 413", async () => {
    const body = JSON.stringify({ email: "doc@x.io", padding: "x".repeat(BODY_LIMIT_BYTES) });
    await errorOf(await postIdentify(body, { raw: true }), 413, "payload_too_large");
  });

  it("rejects a streamed body that grows past 16 KiB with 413", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(4096));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const request = new Request(IDENTIFY_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    await errorOf(await identify.fetch(request), 413, "payload_too_large");
  });

  it("rejects a non-JSON Content-Type with 415", async () => {
    const response = await postIdentify("email=doc@x.io", {
      raw: true,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    await errorOf(response, 415, "unsupported_media_type");
  });
});
