/**
 * Every command-line tool prints its usage on `--help` (and `-h`) and exits 0, without
 * touching the database: the tools' main runs here against a server nothing listens on.
 */
import { describe, expect, it } from "vitest";
import { runMain } from "./support/scripts.js";

const UNREACHABLE = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere" };

describe("--help", () => {
  it.each([
    ["scripts/forget.ts", "--help", "Usage: npm run forget"],
    ["scripts/forget.ts", "-h", "Usage: npm run forget"],
    ["scripts/explain.ts", "--help", "Usage: npm run explain"],
    ["scripts/import.ts", "--help", "Usage: npm run import"],
    ["scripts/migrate.ts", "--help", "Usage: npm run db:migrate"],
  ])("%s %s prints the usage on stdout and exits 0", async (script, flag, usage) => {
    const { code, stdout } = await runMain(script, [flag], UNREACHABLE);
    expect(code).toBe(0);
    expect(stdout.startsWith(usage)).toBe(true);
  });

  it("says which shapes of the old Contact table import reads", async () => {
    const { stdout } = await runMain("scripts/import.ts", ["--help"], UNREACHABLE);
    expect(stdout).toContain('Prisma\'s quoted "Contact"');
    expect(stdout).toContain("docs/import.md");
  });

  it("explains forget's request id rule and the flag that lifts the cap", async () => {
    const { stdout } = await runMain("scripts/forget.ts", ["--help"], UNREACHABLE);
    expect(stdout).toContain("a ticket reference such as PRIV-1234");
    expect(stdout).toContain("--over-cap");
  });
});
