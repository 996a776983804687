/** The handler when its database cannot be reached at all. */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { closeDatabase } from "../lib/db/client.js";
import { postIdentify } from "./support/http.js";

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
});
