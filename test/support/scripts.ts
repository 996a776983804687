/**
 * Running the project's command-line tools, in this process (runMain) or in one of their own
 * (runScript), with the same arguments, environment and result.
 *
 * A process costs a second or more to start (Node, then tsx compiling what the tool imports),
 * which was most of the suite's time. So a test of what a tool does calls its exported
 * `main`; a test of what only the process shows (the exit code it really exits with, what
 * goes to stdout and what to stderr, a signal) starts it as npm would. Every `scripts/*.ts`
 * tool exports `main(args)`, resolving to its exit code, and runs it only when it is the
 * process's entry module (README, "Tests").
 */
import { execFile } from "node:child_process";
import { format, promisify } from "node:util";
import { vi } from "vitest";

const execFileAsync = promisify(execFile);

export interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout then stderr. */
  output: string;
}

/** The database variables of the test process, which a tool never inherits. */
const DATABASE_VARIABLES = ["DATABASE_URL", "DATABASE_URL_UNPOOLED"];

/**
 * Runs `node --import tsx <script> <args>`: what `tsx <script>` in package.json does, in
 * one process instead of the three of `npx tsx` (npx, the tsx launcher, node), each of which
 * spent most of a second starting. The database variables of the test process are not
 * passed on; `env` gives the script its own.
 */
export async function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<ScriptRun> {
  const inherited = { ...process.env };
  for (const name of DATABASE_VARIABLES) delete inherited[name];
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", script, ...args],
      { env: { ...inherited, ...env } },
    );
    return { code: 0, stdout, stderr, output: stdout + stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr, output: stdout + stderr };
  }
}

/** What every tool module exports. */
interface Tool {
  main(args: string[]): Promise<number>;
}

/** The fields of a module that vi.resetModules clears (vite's EvaluatedModuleNode). */
interface ModuleNode {
  promise?: unknown;
  exports?: unknown;
  evaluated: boolean;
  importers: Set<string>;
}

/**
 * This worker's registry of evaluated modules. Vitest's own state, not its API: vitest can
 * reset the registry (vi.resetModules) but not restore it.
 */
function moduleRegistry(): Map<string, ModuleNode> {
  const state = (globalThis as { __vitest_worker__?: { evaluatedModules?: unknown } })
    .__vitest_worker__?.evaluatedModules as { idToModuleMap?: Map<string, ModuleNode> } | undefined;
  if (!state?.idToModuleMap) {
    throw new Error("vitest's module registry is not where test/support/scripts.ts looks");
  }
  return state.idToModuleMap;
}

/**
 * Runs `work` on a fresh copy of every module it imports, as a new process would, then puts
 * the test file's own modules back. Without that, a module the test file loads lazily after
 * the run (lib/db/client.ts imports each driver on first use) would be a fresh one too, with
 * its own error classes, which the file's instanceof checks would not recognise.
 */
async function withFreshModules<T>(work: () => Promise<T>): Promise<T> {
  const registry = moduleRegistry();
  const saved = new Map(
    [...registry].map(([id, node]) => [id, { ...node, importers: new Set(node.importers) }]),
  );
  vi.resetModules();
  try {
    return await work();
  } finally {
    for (const [id, node] of registry) {
      const before = saved.get(id);
      node.promise = before?.promise;
      node.exports = before?.exports;
      node.evaluated = before?.evaluated ?? false;
      node.importers = before?.importers ?? new Set();
    }
  }
}

/**
 * Runs `script`'s `main(args)` in this process as runScript runs it in its own: with `env`
 * over this process's environment less its database variables, and every module it loads
 * loaded afresh (withFreshModules), so nothing an earlier run cached (the configuration, the
 * process-wide connection) carries over. What it prints to the console or the process's
 * streams is its stdout (console.log, console.info) and stderr (console.error, console.warn).
 * Restores the environment afterwards. One run at a time: the environment is the process's.
 */
export async function runMain(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<ScriptRun> {
  const saved = { ...process.env };
  for (const name of DATABASE_VARIABLES) delete process.env[name];
  Object.assign(process.env, env);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const print =
    (into: string[]) =>
    (...parts: unknown[]) => {
      into.push(`${format(...parts)}\n`);
    };
  const write = (into: string[]) => (chunk: string | Uint8Array) => {
    into.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    return true;
  };
  const spies = [
    vi.spyOn(console, "log").mockImplementation(print(stdout)),
    vi.spyOn(console, "info").mockImplementation(print(stdout)),
    vi.spyOn(console, "error").mockImplementation(print(stderr)),
    vi.spyOn(console, "warn").mockImplementation(print(stderr)),
    vi.spyOn(process.stdout, "write").mockImplementation(write(stdout)),
    vi.spyOn(process.stderr, "write").mockImplementation(write(stderr)),
  ];
  let code: number;
  try {
    code = await withFreshModules(async () => {
      const tool = (await import(new URL(`../../${script}`, import.meta.url).href)) as Tool;
      return tool.main([...args]);
    });
  } catch (error) {
    // What an unhandled rejection does to the process: exit 1, the error on stderr.
    stderr.push(`${error instanceof Error ? error.stack : String(error)}\n`);
    code = 1;
  } finally {
    for (const spy of spies) spy.mockRestore();
    for (const name of Object.keys(process.env)) {
      if (!(name in saved)) delete process.env[name];
    }
    Object.assign(process.env, saved);
  }
  const [out, err] = [stdout.join(""), stderr.join("")];
  return { code, stdout: out, stderr: err, output: out + err };
}
