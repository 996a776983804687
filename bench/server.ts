/**
 * Runs an implementation under test in a process group of its own on a free port of
 * 127.0.0.1: the service (`npm start`, which migrates, then serves) or the minimal one
 * (minimal/server.ts). Ready when it prints "listening". Its output goes to a file,
 * bench/results/<implementation>.log, as a supervisor would keep it: read through a pipe by
 * the bench, the service's log line per request cost the load generator's share of the
 * two cores CPU that no deployment spends on the machine serving. Its CPU time is read from /proc for
 * every process of the group (npm, sh, tsx and the server itself), so nothing in the
 * server has to report it. Stopping signals the group, as Ctrl-C would (npm runs the
 * script under `sh -c`, which does not pass a SIGTERM on), and kills it after 10 s.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export type Implementation = "ours" | "minimal";

export interface ServiceProcess {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /** User + system CPU seconds used so far by every process of the group. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** A port of 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", resolve);
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no free port");
  return address.port;
}

/** utime + stime of every live process whose process group is `group`, in seconds. */
function groupCpuSeconds(group: number): number {
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the ")" that closes the command name: state is field 3, pgrp 5,
    // utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === group) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGroupGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/**
 * Starts `implementation` against `databaseUrl`; `env` adds to (and wins over) the caller's
 * environment. With `nodeFlags` (node refuses --cpu-prof in NODE_OPTIONS) the service runs
 * as `node <flags> --import tsx scripts/serve.ts`, the script `npm start` runs, instead of
 * through npm. Rejects with its last output if it exits or does not listen in time.
 */
export async function startService(
  implementation: Implementation,
  databaseUrl: string,
  env: NodeJS.ProcessEnv = {},
  nodeFlags?: string[],
): Promise<ServiceProcess> {
  const port = await freePort();
  const script = implementation === "ours" ? "scripts/serve.ts" : "bench/minimal/server.ts";
  const [command, args] =
    implementation === "ours" && !nodeFlags
      ? ["npm", ["start"]]
      : [process.execPath, [...(nodeFlags ?? []), "--import", "tsx", script]];
  mkdirSync(RESULTS, { recursive: true });
  const logFile = `${RESULTS}${implementation}.log`;
  const output = openSync(logFile, "w");
  const child: ChildProcess = spawn(command, args, {
    cwd: REPO_ROOT,
    // Guardrails blank (off, their default) also beats a developer's .env.
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      NEON_WS_PROXY: "",
      JUNK_EMAILS: "",
      JUNK_PHONE_NUMBERS: "",
      MAX_CONTACTS_PER_CUSTOMER: "",
      ...env,
    },
    detached: true,
    stdio: ["ignore", output, output],
  });
  closeSync(output);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${implementation}`);
  /** The last lines it printed, for an error message. */
  const tail = () => readFileSync(logFile, "utf8").split("\n").slice(-20).join("\n");

  const stop = async () => {
    if (!groupAlive(pid)) return;
    process.kill(-pid, "SIGTERM");
    if (await waitGroupGone(pid, STOP_TIMEOUT_MS)) return;
    process.kill(-pid, "SIGKILL");
    await waitGroupGone(pid, 5_000);
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (readFileSync(logFile, "utf8").includes("listening")) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > START_TIMEOUT_MS) {
          clearInterval(poll);
          reject(new Error(`${implementation} did not listen within 60 s`));
        }
      }, 50);
      child.once("exit", (code) => {
        clearInterval(poll);
        reject(new Error(`${implementation} exited (code ${code}) before listening`));
      });
    });
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tail()}`);
  }
  return { origin: `http://127.0.0.1:${port}`, cpuSeconds: () => groupCpuSeconds(pid), stop };
}
