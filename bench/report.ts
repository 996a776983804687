/**
 * Turns measured runs into the bench's two outputs: the text report (tables, then each
 * target with its measured figure and met/missed) and the JSON document written to
 * bench/results/latest.json. Pure functions of the results, so the report can be re-rendered
 * from a saved JSON file and reads the same every time.
 */
import { availableParallelism, cpus, loadavg, release, totalmem, type } from "node:os";
import type { InvariantReport } from "../lib/db/invariants.js";
import type { StatementCount } from "./database.js";
import type { LatencySummary } from "./load.js";
import type { PreloadSummary } from "./preload.js";
import type { WorkloadName } from "./workloads.js";

/** One workload at one concurrency, measured. */
export interface RunRecord {
  section: "matrix" | "scaling" | "latency";
  workload: WorkloadName;
  concurrency: number;
  /** Delay the service's database bridge added per round trip. */
  dbLatencyMs: number;
  /** Contacts preloaded before this run's section (the size it is reported under). */
  preloadRows: number;
  /** Live contacts when the measured window began. */
  tableRows: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  errors: number;
  wrongAnswers: number;
  problems: string[];
  /** Merge pairs ran out before the time was up (the run is shorter). */
  exhausted: boolean;
  /** What the service logged for the measured requests: { merged: 1234 }. */
  outcomes: Record<string, number>;
  /** Median handler time the service itself logged (durationMs), in ms. */
  handlerP50Ms: number;
  statements?: StatementCount;
  statementsPerRequest?: number;
  invariants: InvariantReport;
  violations: number;
}

/** The machine the bench ran on. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  loadAverageAtStart: number[];
  /** Filled in when the run ends: other work on the machine shows up here. */
  loadAverageAtEnd?: number[];
}

/** A stated target with its measured figure. */
export interface TargetResult {
  target: string;
  measured: string;
  status: "met" | "missed" | "not measured";
}

/** Everything a bench run produced: the content of latest.json. */
export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  command: string;
  mode: "quick" | "full";
  machine: MachineInfo;
  setup: {
    database: string;
    serverRole: string;
    /** Commit of the service's code, and its uncommitted changes. */
    code: string;
    statementCounting: string;
    service: string;
    load: string;
    notes: string[];
  };
  preloads: (PreloadSummary & { purpose: string })[];
  runs: RunRecord[];
  scaling: {
    workload: WorkloadName;
    small: number;
    large: number;
    p50Small: number;
    p50Large: number;
    ratio: number;
  }[];
  latencyModel?: {
    dbLatencyMs: number;
    rows: number;
    /** A bare `select 1` through the service's driver and bridge, p50 at 0 and at dbLatencyMs. */
    bareRoundTripMs: { base: number; withLatency: number };
    /** What one round trip costs in this model: bareRoundTripMs.withLatency - base. */
    roundTripCostMs: number;
    comparison: {
      workload: WorkloadName;
      p50Base: number;
      p50WithLatency: number;
      /** (p50WithLatency - p50Base) / roundTripCostMs: about 1 for one round trip per request. */
      roundTrips: number;
    }[];
  };
  targets: TargetResult[];
  invariantChecks: number;
  invariantViolations: number;
  /** Every service start: its bridge delay and the newest migration applied. */
  serviceStarts: { latencyMs: number; schema: string }[];
  serviceStops: string[];
}

/** The 1, 5 and 15 minute load averages, rounded. */
export const currentLoad = () => loadavg().map((value) => Math.round(value * 100) / 100);

/** Reads the machine's description (PostgreSQL version from the caller). */
export function machineInfo(postgres: string): MachineInfo {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
    postgres,
    loadAverageAtStart: currentLoad(),
  };
}

const findRun = (
  runs: readonly RunRecord[],
  section: RunRecord["section"],
  workload: WorkloadName,
  predicate: (run: RunRecord) => boolean = () => true,
) => runs.find((run) => run.section === section && run.workload === workload && predicate(run));

const LATENCY_TARGET_MS = 8;
const FLATNESS_TARGET = 1.2;

/** Evaluates the targets against the measured runs. */
export function evaluateTargets(results: Omit<BenchResults, "targets">): TargetResult[] {
  const targets: TargetResult[] = [];
  const counted = results.runs.filter((run) => run.statementsPerRequest !== undefined);
  if (counted.length === 0) {
    targets.push({
      target: "1 statement per request on every workload",
      measured: "pg_stat_statements unavailable",
      status: "not measured",
    });
  } else {
    const perRequest = counted.map((run) => run.statementsPerRequest ?? 0);
    const off = counted.filter((run) => run.statements?.total !== run.requests);
    targets.push({
      target: "1 statement per request on every workload",
      measured:
        `${fixed(Math.min(...perRequest), 3)}-${fixed(Math.max(...perRequest), 3)} over ` +
        `${counted.length} runs` +
        (off.length ? `; ${off.length} runs off: ${off.map(label).join(", ")}` : ""),
      status: off.length === 0 ? "met" : "missed",
    });
  }

  const lookup = results.scaling.find((row) => row.workload === "lookup");
  targets.push(
    lookup
      ? {
          target: `lookup p50 at ${count(lookup.large)} rows within ${FLATNESS_TARGET}x of ${count(lookup.small)}`,
          measured: `${ms(lookup.p50Large)} vs ${ms(lookup.p50Small)} ms = ${fixed(lookup.ratio, 2)}x`,
          status: lookup.ratio <= FLATNESS_TARGET ? "met" : "missed",
        }
      : { target: "lookup p50 flat in table size", measured: "-", status: "not measured" },
  );

  for (const workload of ["lookup", "mixed"] as const) {
    const run = findRun(results.runs, "latency", workload);
    targets.push(
      run
        ? {
            target: `${workload} p50 under ${LATENCY_TARGET_MS} ms at concurrency 1, database ${run.dbLatencyMs} ms away`,
            measured: `${ms(run.latencyMs.p50)} ms`,
            status: run.latencyMs.p50 < LATENCY_TARGET_MS ? "met" : "missed",
          }
        : {
            target: `${workload} p50 under ${LATENCY_TARGET_MS} ms at concurrency 1, database 5 ms away`,
            measured: "latency model skipped (--db-latency 0)",
            status: "not measured",
          },
    );
  }

  const at64 = results.runs.filter((run) => run.section === "matrix" && run.concurrency === 64);
  const errors = at64.reduce((sum, run) => sum + run.errors + run.wrongAnswers, 0);
  const violations = at64.reduce((sum, run) => sum + run.violations, 0);
  const requests = at64.reduce((sum, run) => sum + run.requests, 0);
  targets.push({
    target: "zero errors at concurrency 64",
    measured: `${errors} errors or wrong answers in ${count(requests)} requests (${at64.length} runs)`,
    status: at64.length === 0 ? "not measured" : errors === 0 ? "met" : "missed",
  });
  targets.push({
    target: "zero invariant violations at concurrency 64",
    measured: `${violations} violations after ${at64.length} runs`,
    status: at64.length === 0 ? "not measured" : violations === 0 ? "met" : "missed",
  });
  return targets;
}

const label = (run: RunRecord) =>
  `${run.section} ${run.workload} c${run.concurrency} (${run.statements?.total ?? "?"}/${run.requests})`;
const fixed = (value: number, digits: number) =>
  Number.isFinite(value) ? value.toFixed(digits) : "-";
/** Milliseconds: 2 decimals below 10, 1 below 100, else whole. */
const ms = (value: number) =>
  !Number.isFinite(value)
    ? "-"
    : value < 10
      ? value.toFixed(2)
      : value < 100
        ? value.toFixed(1)
        : value.toFixed(0);
const count = (value: number) => value.toLocaleString("en-US");

function table(headers: string[], rows: string[][], alignLeft = 1): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i < alignLeft ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
      )
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join(
    "\n",
  );
}

const outcomeText = (outcomes: Record<string, number>) =>
  Object.entries(outcomes)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");

function runRows(runs: readonly RunRecord[]): string[][] {
  return runs.map((run) => [
    run.workload,
    String(run.concurrency),
    count(run.tableRows),
    count(Math.round(run.requestsPerSecond)),
    ms(run.latencyMs.p50),
    ms(run.latencyMs.p90),
    ms(run.latencyMs.p99),
    ms(run.latencyMs.max),
    ms(run.handlerP50Ms),
    ms(run.statements?.identifyMeanMs ?? Number.NaN),
    String(run.errors + run.wrongAnswers),
    run.statementsPerRequest === undefined ? "n/a" : fixed(run.statementsPerRequest, 3),
    run.violations === 0 ? "ok" : `${run.violations} VIOLATIONS`,
    outcomeText(run.outcomes) + (run.exhausted ? " (pairs ran out)" : ""),
  ]);
}

const RUN_HEADERS = [
  "workload",
  "conc",
  "rows",
  "req/s",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "max ms",
  "svc p50",
  "db mean",
  "errors",
  "stmt/req",
  "invariants",
  "outcomes (service log)",
];

/** Renders the text report. */
export function renderReport(results: BenchResults): string {
  const m = results.machine;
  const out: string[] = [];
  out.push(`identify benchmark (${results.mode}) ${results.startedAt}`);
  out.push(`command:  ${results.command}`);
  out.push(
    `machine:  nproc ${m.nproc}, ${m.cpuModel}, ${m.memoryGiB} GiB RAM, ${m.os}, ` +
      `Node ${m.node}, PostgreSQL ${m.postgres}; load average ${m.loadAverageAtStart.join(" ")} ` +
      `at start, ${m.loadAverageAtEnd?.join(" ") ?? "-"} at end`,
  );
  out.push(`code:     ${results.setup.code}`);
  const schemas = [...new Set(results.serviceStarts.map((start) => start.schema))];
  out.push(
    `schema:   ${schemas.join(" / ")}` +
      (schemas.length > 1 ? " (CHANGED between service starts: runs are not comparable)" : ""),
  );
  out.push(`database: ${results.setup.database}`);
  out.push(`service:  ${results.setup.service}`);
  out.push(`load:     ${results.setup.load}`);
  out.push(`stmts:    ${results.setup.statementCounting}`);
  for (const note of results.setup.notes) out.push(`note:     ${note}`);
  for (const preload of results.preloads) {
    const sizes = Object.entries(preload.customerSizes)
      .map(([size, n]) => `${size}:${count(n)}`)
      .join(" ");
    out.push(
      `preload:  ${count(preload.rows)} contacts, ${count(preload.customers)} customers ` +
        `(by contacts ${sizes}) in ${preload.seconds.toFixed(1)} s, for ${preload.purpose}`,
    );
  }

  const matrix = results.runs.filter((run) => run.section === "matrix");
  if (matrix.length) {
    out.push("", "Workloads (the table grows as the writing workloads run)");
    out.push(table(RUN_HEADERS, runRows(matrix)));
  }

  const scaling = results.runs.filter((run) => run.section === "scaling");
  if (scaling.length) {
    out.push(
      "",
      "Scaling: every workload at concurrency 1 on a freshly preloaded table of each size",
    );
    out.push(table(RUN_HEADERS, runRows(scaling)));
    out.push(
      "",
      table(
        ["workload", "p50 small (ms)", "p50 large (ms)", "large/small"],
        results.scaling.map((row) => [
          `${row.workload} (${count(row.small)} vs ${count(row.large)} rows)`,
          ms(row.p50Small),
          ms(row.p50Large),
          `${fixed(row.ratio, 2)}x`,
        ]),
      ),
    );
  }

  const latency = results.runs.filter((run) => run.section === "latency");
  if (latency.length && results.latencyModel) {
    const model = results.latencyModel;
    out.push(
      "",
      `Latency model: the service's database ${model.dbLatencyMs} ms away (added by the ` +
        `WebSocket proxy its Neon driver goes through), concurrency 1, ~${count(model.rows)} rows`,
    );
    out.push(table(RUN_HEADERS, runRows(latency)));
    out.push(
      "",
      `One round trip in this model: a bare select 1 through the same driver and bridge takes ` +
        `${ms(model.bareRoundTripMs.base)} ms at 0 ms and ${ms(model.bareRoundTripMs.withLatency)} ms ` +
        `at ${model.dbLatencyMs} ms (p50), so a round trip adds ${ms(model.roundTripCostMs)} ms.`,
      table(
        [
          "workload",
          "p50 at 0 ms",
          `p50 at ${model.dbLatencyMs} ms`,
          "added ms",
          `round trips (added / ${ms(model.roundTripCostMs)} ms)`,
        ],
        model.comparison.map((row) => [
          row.workload,
          ms(row.p50Base),
          ms(row.p50WithLatency),
          ms(row.p50WithLatency - row.p50Base),
          fixed(row.roundTrips, 2),
        ]),
      ),
    );
  }

  const problems = results.runs.flatMap((run) =>
    run.problems.map((problem) => `${run.section} ${run.workload} c${run.concurrency}: ${problem}`),
  );
  const others = results.runs.flatMap((run) =>
    (run.statements?.others ?? []).map(
      (other) =>
        `${run.section} ${run.workload} c${run.concurrency}: ${other.calls} x ${other.query}`,
    ),
  );
  if (problems.length)
    out.push("", "Problems seen (first few per run):", ...problems.map((p) => `  ${p}`));
  if (others.length)
    out.push("", "Statements other than identify_contact:", ...others.map((o) => `  ${o}`));

  out.push("", "Targets");
  out.push(
    table(
      ["target", "measured", "status"],
      results.targets.map((t) => [
        t.target,
        t.measured,
        t.status === "missed" ? "MISSED" : t.status,
      ]),
      2,
    ),
  );
  out.push(
    "",
    "Invariants (lib/db/invariants.ts: primary not oldest, secondary not on a live primary, " +
      "identifier in two customers, duplicate rows): checked after every preload and every run " +
      `(${results.invariantChecks} checks), ${results.invariantViolations} violations` +
      (results.invariantViolations ? " -> FAIL (exit 1)" : "."),
  );
  for (const stop of results.serviceStops) out.push(`Shutdown: ${stop}`);
  out.push(`Finished ${results.finishedAt}`);
  return out.join("\n");
}
