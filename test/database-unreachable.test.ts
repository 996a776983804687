/**
 * The handler when its database cannot be reached at all, and a client that goes away,
 * which must not look like it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import identify from "../api/identify.js";
import { closeDatabase } from "../lib/db/client.js";
import { IDENTIFY_URL, postIdentify } from "./support/http.js";

describe("POST /identify without a reachable database", () => {
  beforeAll(() => {
    // Port 1 on loopback: nothing listens there, so every connection is refused at once.
    process.env.DATABASE_URL = "postgres://postgres@127.0.0.1:1/identify";
    process.env.DB_CONNECT_TIMEOUT_MS = "2000";
  });
  afterAll(() => closeDatabase());

  it("answers 503 with Retry-After and a request id, and no driver detail", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await postIdentify({ email: "doc@x.io" });
      expect(response.status).toBe(503);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
      const text = await response.text();
      const body = JSON.parse(text) as { error: { code: string; requestId: string } };
      expect(body.error.code).toBe("database_unavailable");
      expect(body.error.requestId).toBe(response.headers.get("x-request-id"));
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres|websocket/i);
      expect(logged.mock.calls.some((call) => String(call[0]).includes(body.error.requestId))).toBe(
        true,
      );
    } finally {
      logged.mockRestore();
    }
  });

  it("logs a body the client broke off as client_closed with 499, not as a database outage", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    const failed = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      // What a Node request body does when its client resets the connection mid-body.
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"email":'));
          controller.error(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
        },
      });
      const response = await identify.fetch(
        new Request(IDENTIFY_URL, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body,
          duplex: "half",
        } as RequestInit),
      );
      expect(response.status).toBe(499);
      expect(failed).not.toHaveBeenCalled();
      const lines = logged.mock.calls.map((call) => JSON.parse(String(call[0])) as object);
      expect(lines).toEqual([
        expect.objectContaining({ status: 499, outcome: "client_closed", code: "client_closed" }),
      ]);
    } finally {
      logged.mockRestore();
      failed.mockRestore();
    }
  });
});
