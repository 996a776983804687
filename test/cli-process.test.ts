/**
 * Each command-line tool as the process npm starts: the exit code the process really exits
 * with, what it writes to stdout and what to stderr. What the tools do is tested by calling
 * their `main` in-process (test/support/scripts.ts); this is what only a process shows, once
 * per tool.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScratchDatabase, scratchDatabase } from "./support/databases.js";
import { runScript } from "./support/scripts.js";

/** A server nothing listens on: a tool that connects to it fails. */
const UNREACHABLE_URL = "postgres://postgres@127.0.0.1:1/nowhere";

describe.concurrent("the tools as processes", () => {
  let database: ScratchDatabase;
  beforeAll(async () => {
    database = await scratchDatabase();
  });
  afterAll(() => database?.remove());

  it("db:migrate --deploy without a database exits 1, saying why on stderr only", async () => {
    // A deploy build needs a key before anything else (deploy-access.test.ts).
    const { code, stdout, stderr } = await runScript("scripts/migrate.ts", ["--deploy"], {
      API_KEYS: "k3y-for-the-process-test-0123",
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/No database configured for this deployment/);
    expect(stdout).toBe("");
  });

  it("explain exits 2 when nothing matches, saying so on stdout", async () => {
    const { code, stdout, stderr } = await runScript(
      "scripts/explain.ts",
      ["--email", "nobody@x.io"],
      database.env,
    );
    expect(code).toBe(2);
    expect(stdout).toContain("No live contact matches.");
    expect(stderr).toBe("");
  });

  it("forget exits 1 on a bad --request-id, saying why on stderr only", async () => {
    const { code, stdout, stderr } = await runScript(
      "scripts/forget.ts",
      ["--email", "doc@x.io", "--yes", "--request-id", "Doc Brown"],
      { DATABASE_URL: UNREACHABLE_URL },
    );
    expect(code).toBe(1);
    expect(stderr).toContain("a ticket reference such as PRIV-1234");
    expect(stdout).toBe("");
  });

  it("import exits 1 once it has said on stderr that the source refused, its pools open or not", async () => {
    const { code, stdout, stderr } = await runScript(
      "scripts/import.ts",
      ["--from", "postgres://legacy:hunter2-secret@127.0.0.1:1/legacy"],
      database.env,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/Import failed; nothing was imported: .*ECONNREFUSED/);
    expect(stdout).toContain("Importing from 127.0.0.1:1 into");
    expect(stdout + stderr).not.toContain("hunter2");
  });

  it("relink exits 2 on bad input, saying why on stderr only", async () => {
    const { code, stdout, stderr } = await runScript("scripts/relink.ts", ["--yes"], {
      DATABASE_URL: UNREACHABLE_URL,
    });
    expect(code).toBe(2);
    expect(stderr).toContain("Usage: npm run relink");
    expect(stdout).toBe("");
  });

  it("suspects exits 2 on a bad --limit, saying why on stderr only", async () => {
    const { code, stdout, stderr } = await runScript("scripts/suspects.ts", ["--limit", "0"], {
      DATABASE_URL: UNREACHABLE_URL,
    });
    expect(code).toBe(2);
    expect(stderr).toContain("--limit must be a whole number");
    expect(stdout).toBe("");
  });
});
