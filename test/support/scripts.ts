/** Running the project's command-line scripts in a process of their own, as npm runs them. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

interface ScriptRun {
  code: number;
  stdout: string;
  /** stdout then stderr. */
  output: string;
}

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
  const { DATABASE_URL: _url, DATABASE_URL_UNPOOLED: _unpooled, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", script, ...args],
      { env: { ...inherited, ...env } },
    );
    return { code: 0, stdout, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, output: failed.stdout + failed.stderr };
  }
}
