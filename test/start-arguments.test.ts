/**
 * `npm start` reads its arguments as every tool does (scripts/selector.ts parseCommandLine):
 * one it cannot read stops it without being repeated, since a stray argument is often a
 * value that was meant for another command, and the log line ends up in shared logs.
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
