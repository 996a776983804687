/**
 * The real `npm start` on an interface other machines reach: it refuses to start without
 * API_KEYS, before opening the database, unless ALLOW_PUBLIC_ACCESS=true opens it on
 * purpose; with keys it serves, and asks every request for one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScratchDatabase, scratchDatabase } from "./support/databases.js";
import { type Service, spawnService } from "./support/service.js";

/** Starting a process and opening a database take seconds on a busy machine. */
const SPAWN_TEST_TIMEOUT_MS = 120_000;

const KEY = "k3y-for-start-tests-0123456789";

/** Settings that open or close access, blank (unset) unless a test sets them. */
const CLOSED = { API_KEYS: "", ALLOW_PUBLIC_ACCESS: "" };

/** POSTs a body to the service on loopback (it listens on every interface). */
const post = (port: number, authorization?: string) =>
  fetch(`http://127.0.0.1:${port}/identify`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(authorization ? { Authorization: authorization } : {}),
    },
    body: JSON.stringify({ email: "doc@hillvalley.edu" }),
  });

/** Stops a service that is listening and waits until it has exited. */
async function stop(service: Service): Promise<void> {
  service.child.kill("SIGTERM");
  await service.exited;
}

describe("npm start on HOST=0.0.0.0", () => {
  it(
    "exits with 1 without API_KEYS, naming API_KEYS and ALLOW_PUBLIC_ACCESS, before opening the database",
    async () => {
      // Nothing listens on port 1: a start that opened the database first would fail on that.
      const service = spawnService({
        ...CLOSED,
        HOST: "0.0.0.0",
        DATABASE_URL: "postgres://identify@127.0.0.1:1/identify",
      });
      const outcome = await Promise.race([
        service.exited,
        service.listening.then(() => "listening" as const),
      ]);
      if (outcome === "listening") service.killAll();
      expect(outcome).toBe(1);
      const refusal = service.lines.find((line) => line.msg === "could not start");
      expect(String(refusal?.error)).toMatch(/^Invalid environment: API_KEYS: required to listen/);
      expect(String(refusal?.error)).toContain("ALLOW_PUBLIC_ACCESS=true");
    },
    SPAWN_TEST_TIMEOUT_MS,
  );

  describe("with a database", () => {
    let database: ScratchDatabase;
    beforeAll(async () => {
      database = await scratchDatabase();
    });
    afterAll(() => database.remove());

    it(
      "serves without keys when ALLOW_PUBLIC_ACCESS=true opens it on purpose",
      async () => {
        const service = spawnService({
          ...database.env,
          ...CLOSED,
          HOST: "0.0.0.0",
          ALLOW_PUBLIC_ACCESS: "true",
        });
        try {
          expect((await post(await service.listening)).status).toBe(200);
        } finally {
          await stop(service);
        }
      },
      SPAWN_TEST_TIMEOUT_MS,
    );

    it(
      "serves with API_KEYS, answering 401 without the key and 200 with it",
      async () => {
        const service = spawnService({
          ...database.env,
          ...CLOSED,
          HOST: "0.0.0.0",
          API_KEYS: KEY,
        });
        try {
          const port = await service.listening;
          expect((await post(port)).status).toBe(401);
          expect((await post(port, `Bearer ${KEY}`)).status).toBe(200);
        } finally {
          await stop(service);
        }
      },
      SPAWN_TEST_TIMEOUT_MS,
    );
  });
});
