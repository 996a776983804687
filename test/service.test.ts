/**
 * The real `npm start` in a child process: it refuses to start on a bad setting, naming it;
 * SIGTERM stops it cleanly.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { readConfig } from "../lib/config.js";
import { openConnection } from "../lib/db/client.js";
import { spawnService } from "./support/service.js";

/** Starting a process and opening the embedded database take seconds on a busy machine. */
const SPAWN_TEST_TIMEOUT_MS = 120_000;

const refusedSettings: ReadonlyArray<{
  name: string;
  env: Record<string, string>;
  variable: string;
}> = [
  { name: "API_KEYS that names no key", env: { API_KEYS: " , " }, variable: "API_KEYS" },
  {
    name: "an API key with a space inside",
    env: { API_KEYS: "first-half-of-a-key second-half-of-a-key" },
    variable: "API_KEYS",
  },
  { name: "PORT=abc", env: { PORT: "abc" }, variable: "PORT" },
  {
    name: "a junk pattern JavaScript accepts and PostgreSQL refuses",
    env: { JUNK_EMAILS: "/(?<n>0)/" },
    variable: "JUNK_EMAILS",
  },
];

describe("npm start, given a setting it must refuse", () => {
  it.each(refusedSettings)(
    "exits with 1 on $name, naming $variable and quoting no key",
    async ({ env, variable }) => {
      const service = spawnService({ PGLITE_DIR: "memory://", ...env });
      const outcome = await Promise.race([
        service.exited,
        service.listening.then(() => "listening" as const),
      ]);
      if (outcome === "listening") service.killAll();
      expect(outcome).toBe(1);
      const refusal = service.lines.find((line) => line.msg === "could not start");
      expect(String(refusal?.error)).toContain(`${variable}:`);
      expect(service.output.join("\n")).not.toMatch(/half-of-a-key/);
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});

/** Resolves like `promise`, or rejects once `ms` have passed: a bound on a wait, not a measure. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const bound = new AbortController();
  const expired = sleep(ms, undefined, { signal: bound.signal }).then(() => {
    throw new Error(`${what} within ${ms} ms`);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    bound.abort();
  }
}

describe("npm start, sent SIGTERM", () => {
  it(
    "exits with 0 within seconds despite an idle keep-alive connection, releasing the embedded database",
    async () => {
      const parent = await mkdtemp(join(tmpdir(), "identify-stop-"));
      const dir = join(parent, "data");
      const service = spawnService({ PGLITE_DIR: dir });
      try {
        const port = await service.listening;
        // A browser's keep-alive connection, idle after its answer.
        const idle = connect(port, "127.0.0.1");
        const closed = new Promise((resolve) => idle.once("close", resolve));
        idle.on("error", () => {});
        const answered = new Promise((resolve) => idle.once("data", resolve));
        idle.write("GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
        await answered;

        // npm's own process, as a container runtime or systemd signals it.
        service.child.kill("SIGTERM");
        expect(await within(service.exited, 15_000, "npm start did not exit")).toBe(0);
        await closed;
        expect(service.lines.map((line) => line.msg)).toContain("stopped");

        // A waiting time of 0: a lock left behind by a process still running fails at once.
        const next = await openConnection(
          readConfig({ PGLITE_DIR: dir, PGLITE_LOCK_WAIT_MS: "0" }),
        );
        await next.close();
      } finally {
        service.killAll();
        await rm(parent, { recursive: true, force: true });
      }
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});
