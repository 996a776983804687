/**
 * The command line of `npm run bench`, parsed once into plain numbers, so every other bench
 * module works from one validated settings object and `--quick` lives in a single place.
 */
import { parseArgs } from "node:util";

/** Everything a bench run is told to do. */
export interface BenchOptions {
  quick: boolean;
  /** Server-level URL used to create, drop and inspect the bench database. */
  adminUrl: string;
  /** Name of the database the bench creates (and drops) for itself. */
  databaseName: string;
  /** Measured time per run (one workload at one concurrency). */
  durationMs: number;
  /** Unmeasured traffic before each run: opens connections and warms plan caches. */
  warmupMs: number;
  /** Extra unmeasured traffic after each service start, so its JIT is warm. */
  serviceWarmupMs: number;
  /** Closed-loop concurrencies of the workload matrix. */
  concurrencies: number[];
  /** Contacts preloaded before the workload matrix. */
  matrixRows: number;
  /** The two table sizes of the scaling comparison, small first. */
  scalingRows: [number, number];
  /** Per-round-trip delay of the latency model; 0 skips that section. */
  dbLatencyMs: number;
  /** Keep the bench database after the run (for EXPLAIN and friends). */
  keepDatabase: boolean;
  /** Run the service with the over-merge guardrails on (BENCH_GUARDRAILS), not off. */
  guardrails: boolean;
  /** Where the JSON results go. */
  outputPath: string;
}

/** What `--help` prints. */
export const USAGE = `Usage: npm run bench -- [options]

  --quick             everything small: 3 s per run (+1 s warm-up), scaling at 10,000 vs 100,000 rows
  --db-latency <d>    per-round-trip delay for the latency-model section, e.g. 5ms (default 5ms;
                      0 skips it). Applied by the WebSocket proxy the service's
                      Neon driver goes through (scripts/neon-ws-proxy.ts).
  --duration <s>      measured seconds per run (default 10, quick 3)
  --warmup <s>        warm-up seconds per run (default 2, quick 1)
  --keep-db           keep the bench database afterwards (it is dropped by default)
  --guardrails        run the service with junk values and a customer cap configured
                      (BENCH_GUARDRAILS), to show their cost; off by default, like the service
  --help              this text

Environment: DATABASE_URL is the server-level URL the bench connects to to create its own
database (default postgres://postgres@127.0.0.1:5432/postgres). The service gets its own URL.`;

const DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** Parses "5ms", "5" or "0" into whole milliseconds (the bridge takes integers). */
export function parseMillis(text: string, name: string): number {
  const match = /^\s*(\d+)\s*(ms)?\s*$/i.exec(text);
  if (!match?.[1]) throw new Error(`${name} must be whole milliseconds, like 5ms (got "${text}")`);
  return Number(match[1]);
}

/** Seconds from the command line (or the fallback) as whole milliseconds. */
function parseSeconds(text: string | undefined, name: string, fallback: number): number {
  const seconds = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`${name} must be a positive number of seconds (got "${text}")`);
  }
  return Math.round(seconds * 1000);
}

/**
 * Reads argv (without node and script) and the environment into BenchOptions.
 * Returns undefined when `--help` was asked for; throws on a bad option.
 */
export function readOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      "db-latency": { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      "keep-db": { type: "boolean", default: false },
      guardrails: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  return {
    quick,
    adminUrl: env.DATABASE_URL?.trim() || DEFAULT_ADMIN_URL,
    databaseName: "identify_bench",
    durationMs: parseSeconds(values.duration, "--duration", quick ? 3 : 10),
    warmupMs: parseSeconds(values.warmup, "--warmup", quick ? 1 : 2),
    serviceWarmupMs: quick ? 3_000 : 5_000,
    concurrencies: [1, 16, 64],
    matrixRows: 10_000,
    scalingRows: [10_000, quick ? 100_000 : 1_000_000],
    dbLatencyMs: parseMillis(values["db-latency"] ?? "5ms", "--db-latency"),
    keepDatabase: values["keep-db"] === true,
    guardrails: values.guardrails === true,
    // A --guardrails run is a comparison, so it does not replace the default report.
    outputPath: new URL(
      values.guardrails ? "./results/latest-guardrails.json" : "./results/latest.json",
      import.meta.url,
    ).pathname,
  };
}

/**
 * The guardrail settings `--guardrails` runs the service with: junk values the workloads
 * never send (so every request pays for the checks without changing what it does), and a
 * cap far above the workloads' 1-4 contacts per customer (checked on every write).
 */
export const BENCH_GUARDRAILS = {
  JUNK_EMAILS: "test@test.com,/^noreply@/",
  JUNK_PHONE_NUMBERS: "/^0+$/,1234567890",
  MAX_CONTACTS_PER_CUSTOMER: "1000",
} as const;
