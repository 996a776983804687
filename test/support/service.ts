/**
 * The real `npm start` in a child process, for what only the whole program does: surviving
 * malformed bytes on a socket, refusing to start, stopping on a signal. It listens on a free
 * port of its choosing (PORT=0) and says which in its "listening" log line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** One JSON log line of the service. */
type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** A spawned `npm start`. */
export interface Service {
  /** npm's process (the one a container runtime or systemd signals), or the server's. */
  readonly child: ChildProcess;
  /** Every JSON line it has logged so far, stdout and stderr. */
  readonly lines: LogLine[];
  /** Everything it has printed so far, line by line. */
  readonly output: string[];
  /** The port, once it logs "listening"; rejects with its output if it exits first. */
  readonly listening: Promise<number>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Kills the process and everything it started at once: cleanup for a test that failed. */
  killAll(): void;
}

/**
 * Spawns what `npm start` runs, `node --import tsx scripts/serve.ts`, with `env` over the
 * test's environment, every opt-in setting blank unless `env` sets it (blank counts as unset,
 * and wins over a developer's .env file). With `{ npm: true }`, `npm start` itself, for a test
 * of npm's own process; npm costs half a second of CPU more to start.
 */
export function spawnService(
  env: Record<string, string>,
  options: { npm?: boolean } = {},
): Service {
  const [command, args]: [string, string[]] = options.npm
    ? ["npm", ["start"]]
    : [process.execPath, ["--import", "tsx", "scripts/serve.ts"]];
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: "",
      API_KEYS: "",
      JUNK_EMAILS: "",
      JUNK_PHONE_NUMBERS: "",
      MAX_CONTACTS_PER_CUSTOMER: "",
      ALLOWED_HOSTS: "",
      HOST: "",
      PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that killAll() reaches a server npm failed to stop.
    detached: true,
  });
  const lines: LogLine[] = [];
  const output: string[] = [];
  // "close", not "exit": it comes once the output has been read to its end.
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  const listening = new Promise<number>((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (text) => {
        output.push(text);
        const line = parseLine(text);
        if (!line) return;
        lines.push(line);
        if (line.msg === "listening") resolve(Number(new URL(String(line.url)).port));
      });
    }
    void exited.then((code) =>
      reject(new Error(`npm start exited with ${code}:\n${output.join("\n")}`)),
    );
  });
  // A refused start is what some tests want: they await `exited`, not this.
  listening.catch(() => {});
  const killAll = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is gone already.
    }
  };
  return { child, lines, output, listening, exited, killAll };
}

function parseLine(text: string): LogLine | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return undefined;
  }
}

/**
 * How a start that should be refused ends: its exit code, or "listening" (after killing it)
 * if it served instead.
 */
export async function refusedStart(service: Service): Promise<number | null | "listening"> {
  const outcome = await Promise.race([
    service.exited,
    service.listening.then(() => "listening" as const),
  ]);
  if (outcome === "listening") service.killAll();
  return outcome;
}
