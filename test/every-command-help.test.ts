/**
 * Every npm command that runs one of the project's own tools (`tsx scripts/<tool>.ts`, or
 * `node --import tsx …` for `npm start`) takes `--help`: it prints its usage on stdout and
 * exits 0, without touching the database (the tools run here against a server nothing listens
 * on). The commands are read from package.json, so a tool added there is checked too. A tool
 * that exports `main` runs in this process (runMain: what its `main` prints is what it
 * prints); only the others cost a process each (runScript).
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { runMain, runScript } from "./support/scripts.js";

const UNREACHABLE = { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere" };

const { scripts } = JSON.parse(
  await readFile(new URL("../package.json", import.meta.url), "utf8"),
) as { scripts: Record<string, string> };

/** The tool each npm command runs, for commands that run exactly one of scripts/. */
const TOOLS = Object.entries(scripts).flatMap(([command, line]) => {
  const match = /^(?:exec )?(?:tsx|node --import tsx) (scripts\/[\w-]+\.ts)((?: [\w-]+)*)$/.exec(
    line,
  );
  return match?.[1]
    ? [{ command, file: match[1], args: match[2]?.trim().split(" ").filter(Boolean) ?? [] }]
    : [];
});

/** Whether `file` exports the `main(args)` that runMain calls (test/support/scripts.ts). */
async function exportsMain(file: string): Promise<boolean> {
  const source = await readFile(new URL(`../${file}`, import.meta.url), "utf8");
  return /^export async function main\(/m.test(source);
}

describe("--help", () => {
  it("is checked for the tools of npm start, build, openapi and db:functions at least", () => {
    expect(TOOLS.map((tool) => tool.command)).toEqual(
      expect.arrayContaining(["start", "build", "openapi", "db:functions"]),
    );
  });

  it("prints every tool's usage on stdout and exits 0", async () => {
    const inProcess = await Promise.all(TOOLS.map(({ file }) => exportsMain(file)));
    // The processes start together; runMain's runs go one at a time (they share the
    // environment), while those processes start.
    const spawned = TOOLS.map(({ file, args }, i) =>
      inProcess[i] ? undefined : runScript(file, [...args, "--help"], UNREACHABLE),
    );
    const runs: { command: string; code: number; usage: boolean }[] = [];
    for (const [i, { command, file, args }] of TOOLS.entries()) {
      const { code, stdout } =
        (await spawned[i]) ?? (await runMain(file, [...args, "--help"], UNREACHABLE));
      runs.push({ command, code, usage: stdout.startsWith("Usage:") });
    }
    expect(runs).toEqual(TOOLS.map(({ command }) => ({ command, code: 0, usage: true })));
  });
});
