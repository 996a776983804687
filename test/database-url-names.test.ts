/**
 * Every message about a database URL names the variable that holds it: the deploy build
 * migrates through DATABASE_URL_UNPOOLED when it is set, and sends the operator to fix that
 * variable, not DATABASE_URL (scripts/migrate.ts).
 */
import { describe, expect, it } from "vitest";
import { runMain } from "./support/scripts.js";

const PRODUCTION = { VERCEL: "1", VERCEL_ENV: "production", API_KEYS: "k3y-for-tests-0123456789" };

describe("scripts/migrate.ts given DATABASE_URL and DATABASE_URL_UNPOOLED", () => {
  it("refuses a plaintext DATABASE_URL_UNPOOLED under its own name, and a loopback DATABASE_URL not at all", async () => {
    const result = await runMain("scripts/migrate.ts", ["--deploy"], {
      ...PRODUCTION,
      DATABASE_URL: "postgres://app:s3cret-pw@127.0.0.1:1/identify",
      DATABASE_URL_UNPOOLED: "postgres://app:s3cret-pw@db.example.com/identify",
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(
      /DATABASE_URL_UNPOOLED: on a Vercel deployment it has no sslmode/,
    );
    expect(result.output).not.toContain("DATABASE_URL: on a Vercel deployment");
    expect(result.output).not.toContain("s3cret-pw");
  });

  it("names DATABASE_URL_UNPOOLED when the database it names cannot be opened", async () => {
    const result = await runMain("scripts/migrate.ts", [], {
      DATABASE_URL: "postgres://app:s3cret-pw@127.0.0.1:2/identify",
      DATABASE_URL_UNPOOLED: "postgres://app:s3cret-pw@127.0.0.1:1/identify",
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(
      /Could not open the database at 127\.0\.0\.1:1 \(DATABASE_URL_UNPOOLED from the environment\)/,
    );
    expect(result.output).not.toContain("s3cret-pw");
  });
});
