/** The command line of `npm run bench`, parsed once into plain numbers. */
import { parseArgs } from "node:util";

const SECTIONS = ["cost", "lookups", "import", "flat", "distance"] as const;
export type Section = (typeof SECTIONS)[number] | "profile";

export interface BenchOptions {
  quick: boolean;
  /** Server-level URL used to create, drop and inspect the bench databases. */
  adminUrl: string;
  sections: Section[];
  /** Measured time per run (one implementation, workload and concurrency). */
  durationMs: number;
  /** Unmeasured traffic before each run: opens connections, warms plan caches. */
  warmupMs: number;
  /** Extra lookups at concurrency 16 after each service start, so its JIT is warm. */
  serviceWarmupMs: number;
  /** Stay on the given server even when a throwaway cluster could count statements. */
  givenServer: boolean;
}

export const USAGE = `Usage: npm run bench -- [options]

  --quick             3 s per run after 1 s of warm-up (default 10 s after 2 s)
  --only <sections>   comma-separated, of: ${SECTIONS.join(", ")} (default: all)
  --profile           only profile the service under lookups at concurrency 16 (node --cpu-prof)
  --duration <s>      measured seconds per run
  --warmup <s>        warm-up seconds per run
  --given-server      run on DATABASE_URL's server even when it cannot count statements
  --help              this text

Environment: DATABASE_URL is the server-level URL the bench creates its databases through
(default postgres://postgres@127.0.0.1:5432/postgres); it must be allowed to create databases
and to set track_functions (a superuser). Statements per request need pg_stat_statements in
its shared_preload_libraries; when it is not, and the server is on this machine, the bench
runs on a throwaway cluster of its own instead (initdb from PG_BIN, pg_config --bindir or
/usr/lib/postgresql/<major>/bin), deleted at the end.`;

function seconds(text: string | undefined, name: string, fallback: number): number {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a positive number of seconds (got "${text}")`);
  }
  return Math.round(value * 1000);
}

/** Reads argv and the environment; undefined for --help; throws on a bad option. */
export function readOptions(
  argv: string[],
  env: Record<string, string | undefined>,
): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      profile: { type: "boolean", default: false },
      duration: { type: "string" },
      warmup: { type: "string" },
      "given-server": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  const only = values.only?.split(",").map((name) => name.trim()) ?? [...SECTIONS];
  const unknown = only.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`unknown section(s): ${unknown.join(", ")}`);
  return {
    quick,
    adminUrl: env.DATABASE_URL?.trim() || "postgres://postgres@127.0.0.1:5432/postgres",
    sections: values.profile ? ["profile"] : (only as Section[]),
    durationMs: seconds(values.duration, "--duration", quick ? 3 : 10),
    warmupMs: seconds(values.warmup, "--warmup", quick ? 1 : 2),
    serviceWarmupMs: quick ? 3_000 : 5_000,
    givenServer: values["given-server"] === true,
  };
}
