/** The import command's refusals: a --from it cannot use is named, never echoed. */
import { describe, expect, it } from "vitest";
import { runScript } from "./support/scripts.js";

describe("npm run import", () => {
  it("refuses a --from that is not a postgres:// URL without printing it, since it may hold a password", async () => {
    const result = await runScript(
      "scripts/import.ts",
      ["--from", "mysql://u:hunter2-secret@h/db"],
      {},
    );
    expect(result.code).toBe(1);
    expect(result.output).toContain("--from must be a postgres:// URL; it is a mysql:// URL.");
    expect(result.output).not.toContain("hunter2-secret");
  });
});
