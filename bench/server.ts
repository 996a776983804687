/**
 * Runs the real service for the bench: `npm start` (migrate, then serve) in its own process
 * group on a free port of 127.0.0.1, pointed at the bench database. Its JSON log lines are
 * read as they come: "listening" says it is ready, and each request's `outcome` lets the
 * bench prove what the requests did (every merge request merged, and so on).
 *
 * Stopping signals the whole process group, as Ctrl-C in a terminal would: npm runs the
 * script through `sh -c`, which does not pass a SIGTERM on, while tsx hands it to the
 * server only once. The group must be gone within a bound, or it is killed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BENCH_GUARDRAILS } from "./options.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** What the service logged for one window of requests. */
export interface WindowTally {
  /** Requests by outcome: { merged: 1234 }, or "HTTP 503 database_unavailable". */
  outcomes: Record<string, number>;
  /** Median of the handler's own durationMs (request parsed to response built, 0.1 ms steps). */
  handlerP50Ms: number;
}

/** Outcome tallies of the requests the service logged, counted per measuring window. */
export class OutcomeLog {
  #window = new Map<string, number>();
  #durations: number[] = [];
  #count = 0;
  #waiter: (() => void) | undefined;
  /** Warnings and errors the service logged outside of requests (last few). */
  readonly incidents: string[] = [];

  /** Starts a new window: tallies from here on belong to it. */
  begin(): void {
    this.#window = new Map();
    this.#durations = [];
    this.#count = 0;
  }

  /** Counts one "identify" log line. */
  record(line: {
    status?: unknown;
    outcome?: unknown;
    code?: unknown;
    durationMs?: unknown;
  }): void {
    if (typeof line.durationMs === "number") this.#durations.push(line.durationMs);
    const outcome = typeof line.outcome === "string" ? line.outcome : "unknown";
    const key =
      outcome === "rejected" ? `HTTP ${String(line.status)} ${String(line.code)}` : outcome;
    this.#window.set(key, (this.#window.get(key) ?? 0) + 1);
    this.#count++;
    this.#waiter?.();
  }

  /**
   * The window's tallies once `expected` requests have been logged (stdout is a pipe and
   * may lag the HTTP answers), or whatever arrived within `timeoutMs`.
   */
  async settle(expected: number, timeoutMs = 5_000): Promise<WindowTally> {
    const deadline = Date.now() + timeoutMs;
    while (this.#count < expected && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    this.#waiter = undefined;
    const durations = Float64Array.from(this.#durations).sort();
    return {
      outcomes: Object.fromEntries([...this.#window].sort((a, b) => b[1] - a[1])),
      handlerP50Ms: durations[Math.max(0, Math.ceil(durations.length / 2) - 1)] ?? Number.NaN,
    };
  }
}

/** A running service. */
export interface ServiceProcess {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  readonly outcomes: OutcomeLog;
  /** Stops the service (bounded in time) and says how it went. */
  stop(): Promise<string>;
}

/** Options for one service process. */
export interface ServiceOptions {
  databaseUrl: string;
  /** NEON_WS_PROXY for the service: the bench's proxy, which adds the latency model's delay. */
  neonWsProxy: string;
  /** The one API key the service accepts (API_KEYS); requests must present it. */
  apiKey: string;
  /** Guardrail settings for the service; absent means off. */
  guardrails?: typeof BENCH_GUARDRAILS;
}

/**
 * The service's environment: the caller's, then what the bench decides. Guardrails are set
 * to "" (off, their default) unless the run asks for them because `npm start` also reads a `.env` file, where variables
 * already set win and a blank one counts as unset: a developer's .env cannot change what
 * the workloads do.
 */
export function serviceEnvironment(options: ServiceOptions, port: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: options.databaseUrl,
    PORT: String(port),
    NEON_WS_PROXY: options.neonWsProxy,
    API_KEYS: options.apiKey,
    JUNK_EMAILS: "",
    JUNK_PHONE_NUMBERS: "",
    MAX_CONTACTS_PER_CUSTOMER: "",
    ...options.guardrails,
  };
}

async function freePort(): Promise<number> {
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

/** Whether any process of the group led by `pid` is still alive. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGroupGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/**
 * Starts `npm start` against `databaseUrl` and resolves once it logs "listening" (after
 * migrating). Rejects, with the service's last output, if it exits or takes too long.
 */
export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn("npm", ["start"], {
    cwd: REPO_ROOT,
    env: serviceEnvironment(options, port),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not spawn npm start");

  const outcomes = new OutcomeLog();
  const tail: string[] = [];
  let onListening: (() => void) | undefined;
  const readLines = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
      let entry: Record<string, unknown> | undefined;
      if (line.startsWith("{")) {
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          entry = undefined;
        }
      }
      if (entry?.msg === "identify") {
        outcomes.record(entry);
        if (entry.level === "error" && outcomes.incidents.length < 5) outcomes.incidents.push(line);
        return;
      }
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (entry?.msg === "listening") onListening?.();
      else if (
        (entry?.level === "warn" || entry?.level === "error") &&
        outcomes.incidents.length < 5
      )
        outcomes.incidents.push(line);
    });
  };
  readLines(child.stdout);
  readLines(child.stderr);

  const stop = async (): Promise<string> => {
    if (!groupAlive(pid)) return "service had already exited";
    const started = Date.now();
    process.kill(-pid, "SIGTERM");
    if (await waitGroupGone(pid, STOP_TIMEOUT_MS)) {
      return `service stopped in ${((Date.now() - started) / 1000).toFixed(1)} s after SIGTERM`;
    }
    process.kill(-pid, "SIGKILL");
    await waitGroupGone(pid, 5_000);
    return `service did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; killed`;
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start did not listen within ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS,
      );
      onListening = () => {
        clearTimeout(timer);
        resolve();
      };
      child.once("exit", (code) => {
        clearTimeout(timer);
        // npm itself exiting first means the script failed (it stays up while serving).
        reject(new Error(`npm start exited (code ${code}) before listening`));
      });
    });
  } catch (error) {
    await stop();
    const output = tail.join("\n");
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`);
  }
  return { origin: `http://127.0.0.1:${port}`, outcomes, stop };
}
