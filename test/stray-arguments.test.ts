/**
 * `npm start` and `npm run db:migrate` read their arguments as every tool does
 * (scripts/selector.ts parseCommandLine): one they cannot read stops them without being
 * repeated, since a stray argument is often a value meant for another command (an email, a
 * URL with its password), and their output ends up in shared logs.
 */
import { describe, expect, it } from "vitest";
import { runScript } from "./support/scripts.js";

/** Starting a process takes seconds on a busy machine. */
const SPAWN_TEST_TIMEOUT_MS = 60_000;

describe("npm start given an argument it does not take", () => {
  it(
    "refuses to start without repeating the argument",
    async () => {
      const stray = "stray.argument@example.com";
      const { code, output } = await runScript("scripts/serve.ts", [stray], { PORT: "0" });
      expect(code).toBe(1);
      expect(output).toContain("Unreadable arguments");
      expect(output).not.toContain(stray);
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});

describe("npm run db:migrate given an argument it does not take", () => {
  it(
    "refuses to migrate without repeating the argument",
    async () => {
      const stray = "postgres://operator:hunter2@db.example.com/identify";
      const { code, output } = await runScript("scripts/migrate.ts", [stray], {
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
      });
      expect(code).toBe(1);
      expect(output).toContain("Unreadable arguments");
      expect(output).not.toContain("hunter2");
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});
