/**
 * `npm run bench`: drives the real service (`npm start`, its own process) and a minimal
 * correct implementation (minimal/) side by side, each on a fresh database, with the same
 * closed-loop HTTP load, and reports where each request's cost goes: throughput and latency,
 * database time per call (pg_stat_user_functions) and Node CPU per request (/proc of the
 * server's processes) and statements sent per request (pg_stat_statements, on a throwaway
 * cluster when the given server does not preload it: statements.ts). Sections: cost (every
 * workload at c=16 and c=1), lookups (three interleaved rounds at c=16), import (lookups
 * while npm run import brings 300,000 rows), flat (lookups at
 * growing table sizes with no ANALYZE), distance (c=1 with the database 5 and 10 ms away),
 * and --profile (a CPU profile of the service). Prints the report, writes
 * bench/results/latest.json; exits 1 on an invariant violation or an aborted run.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { databaseMessage } from "../lib/db/errors.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import {
  type BenchDatabase,
  createBenchDatabase,
  openBenchConnection,
  withDatabase,
} from "./database.js";
import { type DelayProxy, startDelayProxy } from "./delay-proxy.js";
import { createLegacySource } from "./legacy.js";
import { type RequestSource, runClosedLoop, summarize } from "./load.js";
import { type BenchOptions, readOptions, USAGE } from "./options.js";
import { countContacts, preloadCustomers, prepareMergePairs, sampleContacts } from "./preload.js";
import { readProfile, summarizeProfile } from "./profile.js";
import { type BenchResults, type ImportRun, type RunRecord, renderReport } from "./report.js";
import { type Implementation, type ServiceProcess, startService } from "./server.js";
import { type BenchServer, chooseServer, statementsBetween } from "./statements.js";
import { MERGE_SHARE, requestSource, WORKLOADS, type WorkloadName } from "./workloads.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
/** Contacts preloaded before the cost and distance sections. */
const PRELOAD_ROWS = 10_000;
/** Table sizes of the flat section: near-empty first. */
const FLAT_ROWS = [100, 5_000, 20_000, 60_000, 200_000];
const DISTANCES_MS = [0, 5, 10];
/** Rounds of the lookups section. */
const LOOKUP_ROUNDS = 3;
/** Rows of the old service's table the import section imports, and its lookups' concurrency. */
const IMPORT_ROWS = 300_000;
const IMPORT_CONCURRENCY = 4;
const SAMPLE_SIZE = 20_000;
/** The service runs with API keys on, as a public deployment must; the minimal one ignores it. */
const API_KEY = randomBytes(24).toString("hex");

const progress = (line: string) => process.stderr.write(`${line}\n`);
const load1 = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;
const loadText = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(" ");

/** One implementation under test: its database, its server, and the proxy in between. */
interface Side {
  implementation: Implementation;
  database: BenchDatabase;
  service: ServiceProcess;
  /** The next run first warms the new process's JIT. */
  fresh: boolean;
}

class Bench {
  readonly runs: RunRecord[] = [];
  invariantViolations = 0;
  #sides: Side[] = [];
  /** Best requests/s per implementation and concurrency: sizes the merge pairs a run needs. */
  readonly #throughput = new Map<string, number>();

  constructor(
    readonly options: BenchOptions,
    readonly server: BenchServer,
  ) {}

  /** Fresh databases and servers for both implementations (or those given). */
  async start(
    implementations: Implementation[],
    proxy?: DelayProxy,
    nodeFlags?: string[],
  ): Promise<Side[]> {
    await this.stop();
    for (const implementation of implementations) {
      progress(`starting ${implementation} on a fresh database`);
      const database = await createBenchDatabase(this.options.adminUrl, implementation);
      const url = proxy
        ? withDatabase(this.options.adminUrl, database.name, proxy.port)
        : database.url;
      const service = await startService(implementation, url, { API_KEYS: API_KEY }, nodeFlags);
      this.#sides.push({ implementation, database, service, fresh: true });
    }
    return this.#sides;
  }

  /** Stops the servers; checks the service's invariants before dropping its database. */
  async stop(): Promise<void> {
    for (const side of this.#sides.splice(0)) {
      await side.service.stop();
      if (side.implementation === "ours") {
        // The check reads whole tables: without statistics (the flat section) it takes minutes.
        await side.database.connection.db.execute(sql`analyze contacts`);
        const violations = violationCount(await checkInvariants(side.database.connection.db));
        if (violations) progress(`INVARIANT VIOLATIONS: ${violations}`);
        this.invariantViolations += violations;
      }
      await side.database.drop();
    }
  }

  async preload(sides: Side[], rows: number, analyze: boolean): Promise<void> {
    for (const side of sides) {
      const seconds = await preloadCustomers(side.database.connection.db, rows, analyze);
      progress(
        `  ${side.implementation}: ${rows.toLocaleString("en-US")} contacts in ${seconds.toFixed(1)} s${analyze ? ", analyzed" : ", NOT analyzed"}`,
      );
    }
  }

  #pairsFor(side: Side, workload: WorkloadName, concurrency: number): number {
    if (MERGE_SHARE[workload] === 0) return 0;
    const rps = this.#throughput.get(`${side.implementation} ${concurrency}`) ?? 2_000;
    const seconds = (this.options.warmupMs + this.options.durationMs) / 1000;
    return Math.ceil(rps * seconds * MERGE_SHARE[workload] * 1.5) + 50;
  }

  /** Warms up, then measures one workload at one concurrency on one side. */
  async measure(
    section: RunRecord["section"],
    side: Side,
    workload: WorkloadName,
    concurrency: number,
    {
      analyze = false,
      distanceMs = 0,
      round,
    }: { analyze?: boolean; distanceMs?: number; round?: number } = {},
  ): Promise<RunRecord> {
    const { database, service } = side;
    const db = database.connection.db;
    const sample = await sampleContacts(db, SAMPLE_SIZE);
    const pairs = await prepareMergePairs(db, this.#pairsFor(side, workload, concurrency));
    if (analyze) await db.execute(sql`analyze contacts`);
    const loop = (c: number, durationMs: number, source: RequestSource) =>
      runClosedLoop({
        origin: service.origin,
        apiKey: API_KEY,
        concurrency: c,
        durationMs,
        source,
      });
    if (side.fresh) {
      side.fresh = false;
      await loop(
        16,
        this.options.serviceWarmupMs,
        requestSource("lookup", { sample, pairs: [] }, 0),
      );
    }
    const source = requestSource(workload, { sample, pairs }, this.runs.length + 1);
    await loop(concurrency, this.options.warmupMs, source);
    const rows = await countContacts(db);

    // Every request of a window has been answered before it ends, and pg_stat_statements
    // records a statement before its result is sent, so the count is exact.
    const counter = this.server.counter;
    const before = await database.functionTime();
    const statementsBefore = await counter?.snapshot(database.name);
    const cpuBefore = service.cpuSeconds();
    const result = await loop(concurrency, this.options.durationMs, source);
    const cpuAfter = service.cpuSeconds();
    const after = await database.functionTime();
    const statementsAfter = await counter?.snapshot(database.name);

    const record: RunRecord = {
      section,
      implementation: side.implementation,
      workload,
      concurrency,
      distanceMs,
      rows,
      requests: result.requests,
      requestsPerSecond: result.requests / (result.elapsedMs / 1000),
      latencyMs: summarize(result.latenciesMs),
      errors: result.errors + result.wrongAnswers,
      problems: result.problems.concat(result.exhausted ? ["merge pairs ran out"] : []),
      dbMsPerCall: (after.ms - before.ms) / (after.calls - before.calls),
      cpuMsPerRequest: ((cpuAfter - cpuBefore) * 1000) / result.requests,
      ...(statementsBefore &&
        statementsAfter && {
          statements: statementsBetween(statementsBefore, statementsAfter, result.requests),
        }),
      load: load1(),
      ...(round !== undefined && { round }),
    };
    const key = `${side.implementation} ${concurrency}`;
    if (distanceMs === 0) {
      this.#throughput.set(key, Math.max(this.#throughput.get(key) ?? 0, record.requestsPerSecond));
    }
    this.runs.push(record);
    progress(
      `  ${section} ${side.implementation.padEnd(7)} ${workload.padEnd(9)} c${String(concurrency).padEnd(3)}` +
        `${distanceMs ? ` ${distanceMs} ms away` : ""} ${Math.round(record.requestsPerSecond)} req/s  ` +
        `p50 ${record.latencyMs.p50.toFixed(2)} ms  DB ${record.dbMsPerCall.toFixed(3)} ms/call  ` +
        `CPU ${record.cpuMsPerRequest.toFixed(3)} ms/req  ` +
        `${record.statements ? `${record.statements.perRequest.toPrecision(6)} stmt/req  ` : ""}errors ${record.errors}  load ${record.load}`,
    );
    return record;
  }

  /** Runs `measure` on every side, alternating which goes first. */
  async both(sides: Side[], turn: number, run: (side: Side) => Promise<unknown>) {
    const order = turn % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order) await run(side);
  }
}

async function cost(bench: Bench) {
  const sides = await bench.start(["ours", "minimal"]);
  await bench.preload(sides, PRELOAD_ROWS, true);
  let turn = 0;
  for (const workload of WORKLOADS) {
    for (const concurrency of [16, 1]) {
      await bench.both(sides, turn++, (side) =>
        bench.measure("cost", side, workload, concurrency, { analyze: true }),
      );
    }
  }
}

/** Three rounds of lookups at c=16, ours and minimal interleaved, on one database each. */
async function lookups(bench: Bench) {
  const sides = await bench.start(["ours", "minimal"]);
  await bench.preload(sides, PRELOAD_ROWS, true);
  for (let round = 1; round <= LOOKUP_ROUNDS; round++) {
    await bench.both(sides, round, (side) =>
      bench.measure("lookups", side, "lookup", 16, { analyze: true, round }),
    );
  }
}

/**
 * Lookups of the preloaded customers at c=4 while `npm run import` (its own process, as an
 * operator runs it) brings IMPORT_ROWS rows of the old service's table into the same
 * database, from start to exit.
 */
async function importing(bench: Bench): Promise<ImportRun> {
  const [side] = await bench.start(["ours"]);
  if (!side) throw new Error("no service");
  await bench.preload([side], PRELOAD_ROWS, true);
  const db = side.database.connection.db;
  const sample = await sampleContacts(db, SAMPLE_SIZE);
  progress(`  creating the old service's table of ${IMPORT_ROWS.toLocaleString("en-US")} rows`);
  const source = await createLegacySource(bench.options.adminUrl, IMPORT_ROWS);
  try {
    const loop = (durationMs: number, until?: Promise<unknown>) =>
      runClosedLoop({
        origin: side.service.origin,
        apiKey: API_KEY,
        concurrency: IMPORT_CONCURRENCY,
        durationMs,
        source: requestSource("lookup", { sample, pairs: [] }, 0),
        ...(until && { until }),
      });
    await loop(bench.options.serviceWarmupMs);
    progress(`  npm run import, with lookups at c=${IMPORT_CONCURRENCY} until it exits`);
    const started = performance.now();
    const child = spawn("npm", ["run", "import", "--", "--from", source.url], {
      env: {
        ...process.env,
        DATABASE_URL: side.database.url,
        JUNK_EMAILS: "",
        JUNK_PHONE_NUMBERS: "",
        MAX_CONTACTS_PER_CUSTOMER: "",
      },
      stdio: "ignore",
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const result = await loop(60 * 60 * 1000, exited);
    const exitCode = await exited;
    const run: ImportRun = {
      rows: IMPORT_ROWS,
      seconds: (performance.now() - started) / 1000,
      exitCode,
      concurrency: IMPORT_CONCURRENCY,
      requests: result.requests,
      errors: result.errors + result.wrongAnswers,
      problems: result.problems.concat(
        exitCode === 0 ? [] : [`the import exited with ${exitCode}`],
      ),
      latencyMs: summarize(result.latenciesMs),
      load: load1(),
    };
    progress(
      `  import ${run.seconds.toFixed(1)} s (exit ${exitCode}): ${run.requests} lookups, ` +
        `${run.errors} errors, p99 ${run.latencyMs.p99.toFixed(2)} ms, max ${run.latencyMs.max.toFixed(2)} ms`,
    );
    return run;
  } finally {
    await source.drop();
  }
}

async function flat(bench: Bench) {
  const sides = await bench.start(["ours", "minimal"]);
  let turn = 0;
  for (const rows of FLAT_ROWS) {
    await bench.preload(sides, rows, false);
    await bench.both(sides, turn++, (side) => bench.measure("flat", side, "lookup", 1));
  }
}

async function distance(bench: Bench) {
  const { hostname, port } = new URL(bench.options.adminUrl);
  const proxy = await startDelayProxy(hostname, Number(port || 5432));
  try {
    const sides = await bench.start(["ours", "minimal"], proxy);
    await bench.preload(sides, PRELOAD_ROWS, true);
    let turn = 0;
    for (const distanceMs of DISTANCES_MS) {
      proxy.delayMs = distanceMs;
      for (const workload of ["lookup", "mixed"] as const) {
        await bench.both(sides, turn++, (side) =>
          bench.measure("distance", side, workload, 1, { distanceMs }),
        );
      }
    }
    await bench.stop();
  } finally {
    await proxy.close();
  }
}

/** Profiles the service under lookups at c=16; summarizes the measured window. */
async function profile(bench: Bench): Promise<NonNullable<BenchResults["profile"]>> {
  const dir = join(RESULTS, "profile");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const [side] = await bench.start(["ours"], undefined, ["--cpu-prof", `--cpu-prof-dir=${dir}`]);
  if (!side) throw new Error("no service");
  await bench.preload([side], PRELOAD_ROWS, true);
  await bench.measure("profile", side, "lookup", 16);
  const stopping = performance.now();
  await side.service.stop();
  const beforeEndMs = performance.now() - stopping;
  const files = await Promise.all(
    (await readdir(dir)).map(async (name) => ({
      path: join(dir, name),
      size: (await stat(join(dir, name))).size,
    })),
  );
  const largest = files.sort((a, b) => b.size - a.size)[0];
  if (!largest) throw new Error("the service wrote no CPU profile");
  const window = { lengthMs: bench.options.durationMs, beforeEndMs };
  return { ...summarizeProfile(readProfile(largest.path), window), file: largest.path };
}

async function main(): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = readOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${databaseMessage(error)}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const startedAt = new Date().toISOString();
  const server = await chooseServer(options.adminUrl, !options.givenServer, progress);
  progress(`server: ${server.description}\nstatements per request: ${server.counting}`);
  // A throwaway cluster must not outlive the bench, however it ends.
  process.once("exit", () => server.stopNow());
  const bench = new Bench({ ...options, adminUrl: server.adminUrl }, server);
  const loadAtStart = loadText();
  // Read now: the servers run the working tree as it is when they start.
  const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8" }).trim();
  const dirty = git("status", "--porcelain", "--", "lib", "drizzle", "scripts", "api").length > 0;
  const commit = `${git("rev-parse", "--short", "HEAD")}${dirty ? " + uncommitted changes to the service" : ""}`;
  const onSignal = () => void bench.stop().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let aborted: unknown;
  let profileSummary: BenchResults["profile"];
  let importRun: ImportRun | undefined;
  try {
    for (const section of options.sections) {
      progress(`section ${section}`);
      if (section === "cost") await cost(bench);
      else if (section === "lookups") await lookups(bench);
      else if (section === "import") importRun = await importing(bench);
      else if (section === "flat") await flat(bench);
      else if (section === "distance") await distance(bench);
      else profileSummary = await profile(bench);
      await bench.stop();
    }
  } catch (error) {
    aborted = error;
    await bench.stop().catch(() => {});
  }

  const admin = await openBenchConnection(server.adminUrl);
  const [pg] = await queryRows<{ version: string }>(
    admin.db,
    sql`select current_setting('server_version') as version`,
  );
  await admin.close();
  await server.close();
  const results: BenchResults = {
    startedAt,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    machine:
      `${cpus().length} x ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `Linux ${release()}, Node ${process.version}, PostgreSQL ${pg?.version}`,
    commit,
    server: server.description,
    statementCounting: server.counting,
    loadAtStart,
    loadAtEnd: loadText(),
    runs: bench.runs,
    invariantViolations: bench.invariantViolations,
    ...(profileSummary && { profile: profileSummary }),
    ...(importRun && { importRun }),
  };
  await mkdir(RESULTS, { recursive: true });
  await writeFile(join(RESULTS, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
  console.log(renderReport(results));
  if (aborted) {
    console.error(`bench aborted: ${databaseMessage(aborted)}`);
    return 1;
  }
  return results.invariantViolations > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${databaseMessage(error)}`);
    process.exit(1);
  },
);
