/**
 * The deploy build reads the junk lists where the function does (lib/guardrails.ts splits
 * them, lib/config.ts only reads them), and a malformed one fails the build naming the
 * variable before it opens the database, as every other bad setting does.
 */
import { describe, expect, it } from "vitest";
import { runScript } from "./support/scripts.js";

describe("scripts/migrate.ts --deploy with a malformed junk list", () => {
  it.each([
    ["JUNK_EMAILS", "/^noreply@", /JUNK_EMAILS: the pattern \/\^noreply@ has no closing "\/"/],
    ["JUNK_PHONE_NUMBERS", "//", /JUNK_PHONE_NUMBERS: \/\/ is an empty pattern/],
  ])("fails naming %s before opening the database", async (name, value, message) => {
    const result = await runScript("scripts/migrate.ts", ["--deploy"], {
      VERCEL_ENV: "production",
      API_KEYS: "k3y-for-tests-0123456789",
      // Never opened: the refusal comes first.
      DATABASE_URL: "postgres://app@127.0.0.1:1/identify",
      [name]: value,
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(message);
    expect(result.output).not.toContain("Could not open the database");
  });
});
