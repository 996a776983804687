/**
 * `npm run bench`: the entry point. Creates a fresh bench database, starts the real service
 * (`npm start`, its own process) on it, and drives it over HTTP with closed-loop load:
 * the workload matrix at concurrency 1, 16 and 64, every workload at two table sizes, and
 * the same again with the database a few milliseconds away. Counts the service's statements
 * with pg_stat_statements and checks the invariants after every run. Prints the report,
 * writes bench/results/latest.json, and exits non-zero on any invariant violation.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { readConfig } from "../lib/config.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { guardrailsFrom } from "../lib/guardrails.js";
import { type NeonWsProxy, startNeonWsProxy } from "../scripts/neon-ws-proxy.js";
import {
  type BenchDatabase,
  createBenchDatabase,
  message,
  type StatementCounter,
  statementCounter,
} from "./database.js";
import { runClosedLoop, summarize } from "./load.js";
import { BENCH_GUARDRAILS, type BenchOptions, readOptions, USAGE } from "./options.js";
import {
  checkShapes,
  countContacts,
  type PreloadSummary,
  preloadCustomers,
  prepareMergePairs,
  sampleContacts,
} from "./preload.js";
import { probeRoundTrip } from "./probe.js";
import { describeCode, schemaTag } from "./provenance.js";
import {
  type BenchResults,
  currentLoad,
  evaluateTargets,
  machineInfo,
  type RunRecord,
  renderReport,
} from "./report.js";
import { type ServiceProcess, startService } from "./server.js";
import {
  MERGE_SHARE,
  requestSource,
  WORKLOAD_DESCRIPTIONS,
  WORKLOADS,
  type WorkloadName,
} from "./workloads.js";

/** Stored contacts drawn for lookup and secondary requests, per run. */
const SAMPLE_SIZE = 20_000;
/** Concurrency of the warm-up that follows every service (re)start. */
const SERVICE_WARMUP_CONCURRENCY = 16;

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** State shared by the phases of one bench run. */
class Bench {
  readonly runs: RunRecord[] = [];
  readonly preloads: BenchResults["preloads"] = [];
  readonly serviceStops: string[] = [];
  /** Each service start and the schema its migrations left. */
  readonly serviceStarts: BenchResults["serviceStarts"] = [];
  invariantChecks = 0;
  invariantViolations = 0;
  /** Size of the latest preload: the table size a run is reported under. */
  preloadRows = 0;
  /** Best requests/s seen per concurrency: sizes the merge pairs a run will need. */
  readonly #throughput = new Map<number, number>();
  service: ServiceProcess | undefined;
  /** The WebSocket proxy the current service reaches PostgreSQL through. */
  #proxy: NeonWsProxy | undefined;
  /** Set on every (re)start: the next run first warms the new process's JIT. */
  #freshService = false;
  /** The API key the service is started with and every request presents. */
  readonly apiKey = randomBytes(24).toString("hex");

  constructor(
    readonly options: BenchOptions,
    readonly database: BenchDatabase,
    readonly statements: StatementCounter,
  ) {}

  get db() {
    return this.database.connection.db;
  }

  /** (Re)starts the service with the given bridge latency. */
  async startService(latencyMs: number): Promise<ServiceProcess> {
    await this.stopService();
    progress(
      `starting the service (npm start, Neon driver through a proxy adding ${latencyMs} ms)`,
    );
    const { host } = new URL(this.database.serverUrl);
    this.#proxy = await startNeonWsProxy({
      allow: [host.includes(":") ? host : `${host}:5432`],
      latencyMs,
    });
    this.service = await startService({
      databaseUrl: this.database.serverUrl,
      neonWsProxy: this.#proxy.url,
      apiKey: this.apiKey,
      ...(this.options.guardrails ? { guardrails: BENCH_GUARDRAILS } : {}),
    });
    this.#freshService = true;
    this.serviceStarts.push({ latencyMs, schema: await schemaTag(this.db) });
    return this.service;
  }

  async stopService(): Promise<void> {
    const service = this.service;
    this.service = undefined;
    if (service) this.serviceStops.push(await service.stop());
    await this.#proxy?.close();
    this.#proxy = undefined;
  }

  /** Counts invariant violations; any makes the whole bench fail. */
  async checkInvariants() {
    // Junk values may sit in many customers by design: check with the service's settings.
    const report = await checkInvariants(
      this.db,
      this.options.guardrails ? guardrailsFrom(readConfig({ ...BENCH_GUARDRAILS })) : {},
    );
    const violations = violationCount(report);
    this.invariantChecks++;
    this.invariantViolations += violations;
    return { report, violations };
  }

  /** Preloads `rows` contacts and refuses to go on if they are not realistic and consistent. */
  async preload(rows: number, purpose: string): Promise<PreloadSummary> {
    progress(`preloading ${rows.toLocaleString("en-US")} contacts (${purpose})`);
    const summary = await preloadCustomers(this.db, rows);
    const shapes = await checkShapes(this.db);
    const { report, violations } = await this.checkInvariants();
    const badShapes = Object.entries(shapes).filter(([, n]) => n > 0);
    if (violations > 0 || badShapes.length > 0) {
      throw new Error(
        `preloaded data is not consistent: ${JSON.stringify({ ...report, ...shapes })}`,
      );
    }
    progress(
      `  ${summary.customers.toLocaleString("en-US")} customers in ${summary.seconds.toFixed(1)} s; shapes and invariants ok`,
    );
    this.preloads.push({ ...summary, purpose });
    this.preloadRows = rows;
    return summary;
  }

  #pairsFor(workload: WorkloadName, concurrency: number): number {
    const share = MERGE_SHARE[workload];
    if (share === 0) return 0;
    const known = this.#throughput.get(concurrency) ?? Math.max(0, ...this.#throughput.values());
    const rps = known || 2_000;
    const seconds = (this.options.warmupMs + this.options.durationMs) / 1000;
    return Math.ceil(rps * seconds * share * 1.5) + 50;
  }

  /** Warms up, then measures one workload at one concurrency, then checks invariants. */
  async measure(
    section: RunRecord["section"],
    workload: WorkloadName,
    concurrency: number,
    dbLatencyMs: number,
  ): Promise<RunRecord> {
    const service = this.service;
    if (!service) throw new Error("the service is not running");
    const sample = await sampleContacts(this.db, SAMPLE_SIZE);
    const pairs = await prepareMergePairs(this.db, this.#pairsFor(workload, concurrency));
    const seed = this.runs.length + 1;
    const source = requestSource(workload, { sample, pairs }, seed);

    service.outcomes.begin();
    let warmed = 0;
    if (this.#freshService) {
      // A new process runs cold (V8 compiles hot code after thousands of calls); lookups at
      // concurrency 16 get enough requests through even with the database far away.
      this.#freshService = false;
      const jit = await runClosedLoop({
        origin: service.origin,
        apiKey: this.apiKey,
        concurrency: SERVICE_WARMUP_CONCURRENCY,
        durationMs: this.options.serviceWarmupMs,
        source: requestSource("lookup", { sample, pairs: [] }, 0),
      });
      warmed = jit.requests;
    }
    const warm = await runClosedLoop({
      origin: service.origin,
      apiKey: this.apiKey,
      concurrency,
      durationMs: this.options.warmupMs,
      source,
    });
    await service.outcomes.settle(warmed + warm.requests);
    const tableRows = await countContacts(this.db);

    await this.statements.reset();
    service.outcomes.begin();
    const result = await runClosedLoop({
      origin: service.origin,
      apiKey: this.apiKey,
      concurrency,
      durationMs: this.options.durationMs,
      source,
    });
    const { outcomes, handlerP50Ms } = await service.outcomes.settle(result.requests);
    const statements = await this.statements.read();
    const { report, violations } = await this.checkInvariants();

    const seconds = result.elapsedMs / 1000;
    const record: RunRecord = {
      section,
      workload,
      concurrency,
      dbLatencyMs,
      preloadRows: this.preloadRows,
      tableRows,
      requests: result.requests,
      seconds,
      requestsPerSecond: result.requests / seconds,
      latencyMs: summarize(result.latenciesMs),
      errors: result.errors,
      wrongAnswers: result.wrongAnswers,
      problems: result.problems,
      exhausted: result.exhausted || warm.exhausted,
      outcomes,
      handlerP50Ms,
      invariants: report,
      violations,
      ...(statements && {
        statements,
        statementsPerRequest: result.requests ? statements.total / result.requests : Number.NaN,
      }),
    };
    if (dbLatencyMs === 0) {
      this.#throughput.set(
        concurrency,
        Math.max(this.#throughput.get(concurrency) ?? 0, record.requestsPerSecond),
      );
    }
    this.runs.push(record);
    progress(
      `  ${section} ${workload.padEnd(9)} c${String(concurrency).padEnd(3)} ` +
        `${Math.round(record.requestsPerSecond).toString().padStart(6)} req/s  ` +
        `p50 ${record.latencyMs.p50.toFixed(2)} ms  p99 ${record.latencyMs.p99.toFixed(2)} ms  ` +
        `errors ${record.errors + record.wrongAnswers}  ` +
        `stmt/req ${record.statementsPerRequest?.toFixed(3) ?? "n/a"}  violations ${violations}`,
    );
    return record;
  }
}

/** p50 of the first run of a section and workload (on a given preload size). */
function p50Of(
  runs: readonly RunRecord[],
  section: RunRecord["section"],
  workload: WorkloadName,
  preloadRows?: number,
): number | undefined {
  return runs.find(
    (run) =>
      run.section === section &&
      run.workload === workload &&
      (preloadRows === undefined || run.preloadRows === preloadRows),
  )?.latencyMs.p50;
}

async function main(): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = readOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const startedAt = new Date().toISOString();
  const machineAtStart = machineInfo("");
  const code = describeCode();
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

  progress(`creating database ${options.databaseName} via ${redact(options.adminUrl)}`);
  const database = await createBenchDatabase(options.adminUrl, options.databaseName);
  let bench: Bench | undefined;
  let aborted: unknown;
  const onSignal = () => {
    progress("interrupted: stopping the service and dropping the bench database");
    void (async () => {
      await bench?.stopService().catch(() => {});
      await database.dispose(options.keepDatabase).catch(() => {});
      process.exit(130);
    })();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const [small, large] = options.scalingRows;
  let latencyModel: BenchResults["latencyModel"];
  let statementNote = "";
  try {
    const statements = await statementCounter(database);
    statementNote = statements.note;
    bench = new Bench(options, database, statements);
    // The service migrates the fresh database itself, as `npm start` always does.
    await bench.startService(0);

    await bench.preload(options.matrixRows, "the workload matrix");
    for (const workload of WORKLOADS) {
      for (const concurrency of options.concurrencies) {
        await bench.measure("matrix", workload, concurrency, 0);
      }
    }

    for (const rows of [small, large]) {
      await bench.preload(rows, `scaling at ${rows.toLocaleString("en-US")} rows`);
      for (const workload of WORKLOADS) await bench.measure("scaling", workload, 1, 0);
    }

    if (options.dbLatencyMs > 0) {
      progress(`calibrating one round trip at 0 and ${options.dbLatencyMs} ms (select 1)`);
      const bare = await probeRoundTrip(database.serverUrl, 0);
      const far = await probeRoundTrip(database.serverUrl, options.dbLatencyMs);
      const roundTripCostMs = far.p50Ms - bare.p50Ms;
      await bench.startService(options.dbLatencyMs);
      for (const workload of WORKLOADS) {
        await bench.measure("latency", workload, 1, options.dbLatencyMs);
      }
      latencyModel = {
        dbLatencyMs: options.dbLatencyMs,
        rows: large,
        bareRoundTripMs: { base: bare.p50Ms, withLatency: far.p50Ms },
        roundTripCostMs,
        comparison: WORKLOADS.map((workload) => {
          const base = p50Of(bench?.runs ?? [], "scaling", workload, large) ?? Number.NaN;
          const withLatency = p50Of(bench?.runs ?? [], "latency", workload) ?? Number.NaN;
          return {
            workload,
            p50Base: base,
            p50WithLatency: withLatency,
            roundTrips: (withLatency - base) / roundTripCostMs,
          };
        }),
      };
    }
  } catch (error) {
    aborted = error;
  } finally {
    await bench?.stopService();
    await database.dispose(options.keepDatabase).catch((error: unknown) => {
      progress(`could not clean up the bench database: ${message(error)}`);
    });
  }
  if (!bench) throw aborted;

  const runs = bench.runs;
  const scaling = (["lookup", "mixed"] as const).flatMap((workload) => {
    const p50Small = p50Of(runs, "scaling", workload, small);
    const p50Large = p50Of(runs, "scaling", workload, large);
    return p50Small !== undefined && p50Large !== undefined
      ? [{ workload, small, large, p50Small, p50Large, ratio: p50Large / p50Small }]
      : [];
  });
  const partial: Omit<BenchResults, "targets"> = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command,
    mode: options.quick ? "quick" : "full",
    machine: {
      ...machineAtStart,
      postgres: database.serverVersion,
      loadAverageAtEnd: currentLoad(),
    },
    setup: {
      database:
        `${database.name} (fresh: dropped and created; migrated by the service's npm start)` +
        (options.keepDatabase ? ", kept afterwards" : ", dropped afterwards"),
      serverRole: database.serverRole,
      code,
      statementCounting: statementNote,
      service:
        `npm start (scripts/serve.ts) in its own process group (driven at 127.0.0.1), DATABASE_URL -> ` +
        `${database.name} as ${database.serverRole}, DB_POOL_MAX ${process.env.DB_POOL_MAX ?? "5 (default)"}, ` +
        "API_KEYS on (one bench key, sent as a bearer token), " +
        (options.guardrails
          ? `guardrails ON (${Object.entries(BENCH_GUARDRAILS)
              .map(([name, value]) => `${name}=${value}`)
              .join(" ")})`
          : "guardrails off (their default)"),
      load:
        `closed loop over undici keep-alive connections (one per worker), ` +
        `${options.durationMs / 1000} s measured after ${options.warmupMs / 1000} s warm-up per run ` +
        `(plus ${options.serviceWarmupMs / 1000} s of lookups at concurrency ${SERVICE_WARMUP_CONCURRENCY} ` +
        "after each service start); " +
        WORKLOADS.map((w) => `${w} = ${WORKLOAD_DESCRIPTIONS[w]}`).join("; "),
      notes: [...database.notes, ...(aborted ? [`ABORTED: ${message(aborted)}`] : [])],
    },
    preloads: bench.preloads,
    runs,
    scaling,
    ...(latencyModel && { latencyModel }),
    invariantChecks: bench.invariantChecks,
    invariantViolations: bench.invariantViolations,
    serviceStarts: bench.serviceStarts,
    serviceStops: bench.serviceStops,
  };
  const results: BenchResults = { ...partial, targets: evaluateTargets(partial) };

  await mkdir(dirname(options.outputPath), { recursive: true });
  await writeFile(options.outputPath, `${JSON.stringify(results, null, 2)}\n`);
  console.log(renderReport(results));
  console.log(`Results: ${options.outputPath}`);
  if (aborted) {
    console.error(`bench aborted: ${message(aborted)}`);
    return 1;
  }
  return results.invariantViolations > 0 ? 1 : 0;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${message(error)}`);
    process.exit(1);
  },
);
