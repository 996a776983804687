/**
 * The bench's text report and the issue goals it is read against, as pure functions of the
 * measured runs (also written to bench/results/latest.json).
 */
import type { LatencySummary } from "./load.js";
import type { Section } from "./options.js";
import { type ProfileSummary, renderProfile } from "./profile.js";
import type { Implementation } from "./server.js";
import type { StatementCount } from "./statements.js";
import type { WorkloadName } from "./workloads.js";

/** One implementation, workload and concurrency, measured. */
export interface RunRecord {
  section: Section;
  implementation: Implementation;
  workload: WorkloadName;
  concurrency: number;
  /** Delay added to every database round trip (the distance section). */
  distanceMs: number;
  /** Live contacts when the measured window began. */
  rows: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  /** Non-200s, transport failures and wrong answers. */
  errors: number;
  problems: string[];
  /** The implementation's function: Δtotal_time / Δcalls in pg_stat_user_functions. */
  dbMsPerCall: number;
  /** CPU (user + system) of the implementation's processes per request. */
  cpuMsPerRequest: number;
  /** Statements it sent in the window (pg_stat_statements); absent when they could not be counted. */
  statements?: StatementCount;
  /** 1-minute load average when the window ended. */
  load: number;
  /** The lookups section's round, 1 to 3. */
  round?: number;
}

/** The import section: lookups of existing customers while `npm run import` ran. */
export interface ImportRun {
  /** Rows of the old service's table the import read. */
  rows: number;
  /** How long the import ran, start to exit. */
  seconds: number;
  exitCode: number | null;
  concurrency: number;
  requests: number;
  /** Non-200s, transport failures and wrong answers. */
  errors: number;
  problems: string[];
  latencyMs: LatencySummary;
  load: number;
}

export interface BenchResults {
  startedAt: string;
  command: string;
  machine: string;
  commit: string;
  /** The PostgreSQL server the run used, and why that one. */
  server: string;
  /** How statements per request were counted, or "unavailable: <why>". */
  statementCounting: string;
  loadAtStart: string;
  loadAtEnd: string;
  runs: RunRecord[];
  invariantViolations: number;
  profile?: ProfileSummary & { file: string };
  importRun?: ImportRun;
}

interface Goal {
  goal: string;
  measured: string;
  met: boolean;
}

const f = (value: number | undefined, digits = 2) =>
  value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : "-";
const count = (value: number) => value.toLocaleString("en-US");
/** Exact when whole ("1"), else enough digits that 1.0003 never reads as 1.000. */
const perRequest = (statements: StatementCount | undefined) =>
  statements === undefined || !Number.isFinite(statements.perRequest)
    ? "-"
    : Number.isInteger(statements.perRequest)
      ? String(statements.perRequest)
      : statements.perRequest.toPrecision(6);

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const find = (
  runs: readonly RunRecord[],
  section: RunRecord["section"],
  implementation: Implementation,
  workload: WorkloadName,
  concurrency: number,
  distanceMs = 0,
) =>
  runs.find(
    (r) =>
      r.section === section &&
      r.implementation === implementation &&
      r.workload === workload &&
      r.concurrency === concurrency &&
      r.distanceMs === distanceMs,
  );

/** ours ÷ minimal of one figure, for the same section, workload, concurrency and distance. */
function compare(
  runs: readonly RunRecord[],
  section: RunRecord["section"],
  workload: WorkloadName,
  concurrency: number,
  figure: (run: RunRecord) => number,
  distanceMs = 0,
) {
  const ours = find(runs, section, "ours", workload, concurrency, distanceMs);
  const minimal = find(runs, section, "minimal", workload, concurrency, distanceMs);
  if (!ours || !minimal) return undefined;
  const [a, b] = [figure(ours), figure(minimal)];
  return { ours: a, minimal: b, ratio: a / b, difference: a - b };
}

const RATIO_GOALS: [WorkloadName, number][] = [
  ["mixed", 0.9],
  ["new", 0.6],
];
/** The lookups section: medians of three interleaved rounds at c=16. */
const LOOKUP_THROUGHPUT_GOAL = 1.1;
const LOOKUP_DB_GOAL = 0.8;
/** The import section: every lookup answered, the slowest within this. */
const IMPORT_SLOWEST_MS = 500;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] ?? NaN)
    : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
};

/** The lookups section's ours ÷ minimal per round, of one figure, and their median. */
function roundRatios(runs: readonly RunRecord[], figure: (run: RunRecord) => number) {
  const rounds = [...new Set(runs.filter((r) => r.section === "lookups").map((r) => r.round))];
  const ratios = rounds.flatMap((round) => {
    const of = (implementation: Implementation) =>
      runs.find(
        (r) => r.section === "lookups" && r.round === round && r.implementation === implementation,
      );
    const [ours, minimal] = [of("ours"), of("minimal")];
    return ours && minimal ? [figure(ours) / figure(minimal)] : [];
  });
  return { ratios, median: median(ratios) };
}
const DB_GOALS: [WorkloadName, number][] = [
  ["lookup", 1.15],
  ["new", 2],
];
const P50_MARGIN_MS = 1;
const FLAT_GOAL = 1.3;

/** The goals of issues 24, 13 and 11, each with its measured figure. */
function evaluateGoals(runs: readonly RunRecord[], importRun: ImportRun | undefined): Goal[] {
  const goals: Goal[] = [];
  const throughput = roundRatios(runs, (r) => r.requestsPerSecond);
  if (throughput.ratios.length) {
    const db = roundRatios(runs, (r) => r.dbMsPerCall);
    const each = (ratios: number[]) => ratios.map((ratio) => `${f(ratio)}x`).join(", ");
    goals.push(
      {
        goal: `lookup throughput at c=16 >= ${LOOKUP_THROUGHPUT_GOAL}x minimal, median of rounds`,
        measured: `${f(throughput.median)}x (rounds ${each(throughput.ratios)})`,
        met: throughput.median >= LOOKUP_THROUGHPUT_GOAL,
      },
      {
        goal: `DB time per lookup at c=16 <= ${LOOKUP_DB_GOAL}x minimal, median of rounds`,
        measured: `${f(db.median)}x (rounds ${each(db.ratios)})`,
        met: db.median <= LOOKUP_DB_GOAL,
      },
    );
  }
  if (importRun) {
    goals.push({
      goal: `lookups at c=${importRun.concurrency} during the import: all 200, slowest < ${IMPORT_SLOWEST_MS} ms`,
      measured: `${importRun.errors} of ${count(importRun.requests)} failed, slowest ${f(importRun.latencyMs.max)} ms`,
      met:
        importRun.errors === 0 &&
        importRun.requests > 0 &&
        importRun.latencyMs.max < IMPORT_SLOWEST_MS,
    });
  }
  for (const [workload, floor] of RATIO_GOALS) {
    const c = compare(runs, "cost", workload, 16, (r) => r.requestsPerSecond);
    if (c)
      goals.push({
        goal: `${workload} throughput at c=16 >= ${floor}x minimal`,
        measured: `${f(c.ratio)}x (${count(Math.round(c.ours))} vs ${count(Math.round(c.minimal))} req/s)`,
        met: c.ratio >= floor,
      });
  }
  for (const [workload, ceiling] of DB_GOALS) {
    const c = compare(runs, "cost", workload, 1, (r) => r.dbMsPerCall);
    if (c)
      goals.push({
        goal: `DB time per ${workload} call (c=1) <= ${ceiling}x minimal`,
        measured: `${f(c.ratio)}x (${f(c.ours, 3)} vs ${f(c.minimal, 3)} ms)`,
        met: c.ratio <= ceiling,
      });
  }
  // Every workload the cost and distance sections measured at c=1, in the order measured.
  const p50Checks = new Map(
    runs
      .filter(
        (r) =>
          r.implementation === "ours" &&
          r.concurrency === 1 &&
          (r.section === "cost" || r.section === "distance"),
      )
      .map((r) => [`${r.section} ${r.workload} ${r.distanceMs}`, r] as const),
  ).values();
  for (const { section, workload, distanceMs: distance } of p50Checks) {
    const c = compare(runs, section, workload, 1, (r) => r.latencyMs.p50, distance);
    if (c)
      goals.push({
        goal: `${workload} c=1 p50 <= minimal + ${P50_MARGIN_MS} ms, ${section === "cost" ? "direct" : `${distance} ms away`}`,
        measured: `+${f(c.difference)} ms (${f(c.ours)} vs ${f(c.minimal)})`,
        met: c.difference <= P50_MARGIN_MS,
      });
  }
  const counted = runs.filter((r) => r.implementation === "ours" && r.statements);
  if (counted.length) {
    const off = counted.filter((r) => r.statements?.perRequest !== 1);
    goals.push({
      goal: "ours: exactly 1 statement per request, every run",
      measured: off.length
        ? off
            .map((r) => `${r.section} ${r.workload} c${r.concurrency}: ${perRequest(r.statements)}`)
            .join("; ")
        : `1 in all ${counted.length} runs counted`,
      met: off.length === 0,
    });
  }
  const flat = runs.filter((r) => r.section === "flat" && r.implementation === "ours");
  const base = flat[0];
  if (base && flat.length > 1) {
    const worst = flat.reduce((a, b) => (b.latencyMs.p50 > a.latencyMs.p50 ? b : a));
    const ratio = worst.latencyMs.p50 / base.latencyMs.p50;
    goals.push({
      goal: `lookup c=1 p50 without ANALYZE <= ${FLAT_GOAL}x the near-empty table's`,
      measured: `worst ${f(ratio)}x (${f(worst.latencyMs.p50)} ms at ${count(worst.rows)} rows vs ${f(base.latencyMs.p50)} at ${count(base.rows)})`,
      met: ratio <= FLAT_GOAL,
    });
  }
  return goals;
}

const RUN_HEADERS = [
  "workload",
  "c",
  "impl",
  "rows",
  "req/s",
  "p50",
  "p99",
  "DB ms/call",
  "CPU ms/req",
  "stmt/req",
  "errors",
  "load",
];
const runRow = (r: RunRecord) => [
  r.workload,
  String(r.concurrency),
  r.implementation,
  count(r.rows),
  count(Math.round(r.requestsPerSecond)),
  f(r.latencyMs.p50),
  f(r.latencyMs.p99),
  f(r.dbMsPerCall, 3),
  f(r.cpuMsPerRequest, 3),
  perRequest(r.statements),
  String(r.errors),
  f(r.load),
];

/** Statements per request of every run counted, each distinct statement named once below. */
function renderStatements({ runs, statementCounting }: BenchResults): string[] {
  const counted = runs.filter((r) => r.statements);
  if (!counted.length) return [`Statements per request: ${statementCounting}`];
  const labels = new Map<string, string>();
  const label = (query: string) => {
    if (!labels.has(query)) labels.set(query, `S${labels.size + 1}`);
    return labels.get(query) ?? "";
  };
  const rows = counted.map((r) => [
    r.section,
    r.workload,
    String(r.concurrency),
    r.distanceMs ? `${r.distanceMs} ms` : "",
    r.implementation,
    count(r.requests),
    count(r.statements?.total ?? 0),
    perRequest(r.statements),
    (r.statements?.queries ?? []).map((q) => `${label(q.query)} ${count(q.calls)}`).join(", "),
  ]);
  return [
    `Statements per request (${statementCounting}): every top-level statement sent in the window`,
    table(
      [
        "section",
        "workload",
        "c",
        "away",
        "impl",
        "requests",
        "statements",
        "per request",
        "which",
      ],
      rows,
    ),
    ...[...labels].map(([query, name]) => `${name}: ${query}`),
  ];
}

export function renderReport(results: BenchResults): string {
  const { runs } = results;
  const out = [
    `identify benchmark ${results.startedAt}: ${results.command}`,
    `machine: ${results.machine}`,
    `commit:  ${results.commit}; load average ${results.loadAtStart} at start, ${results.loadAtEnd} at end`,
    `server:  ${results.server}`,
  ];
  const section = (name: RunRecord["section"]) => runs.filter((r) => r.section === name);

  const cost = section("cost");
  if (cost.length) {
    out.push(
      "",
      "Cost per workload, ours vs minimal (fresh databases, ANALYZEd before each workload)",
    );
    out.push(table(RUN_HEADERS, cost.map(runRow)));
    const workloads = [...new Set(cost.map((r) => r.workload))];
    out.push(
      "",
      table(
        [
          "ours / minimal",
          "req/s c=16",
          "DB/call c=16",
          "DB/call c=1",
          "CPU/req c=16",
          "c=1 p50 +ms",
        ],
        workloads.map((w) => [
          w,
          `${f(compare(runs, "cost", w, 16, (r) => r.requestsPerSecond)?.ratio)}x`,
          `${f(compare(runs, "cost", w, 16, (r) => r.dbMsPerCall)?.ratio)}x`,
          `${f(compare(runs, "cost", w, 1, (r) => r.dbMsPerCall)?.ratio)}x`,
          `${f(compare(runs, "cost", w, 16, (r) => r.cpuMsPerRequest)?.ratio)}x`,
          f(compare(runs, "cost", w, 1, (r) => r.latencyMs.p50)?.difference),
        ]),
      ),
    );
  }
  const lookups = section("lookups");
  if (lookups.length) {
    out.push(
      "",
      "Lookups at c=16, three rounds, ours and minimal interleaved (one database each, ANALYZEd)",
    );
    out.push(
      table(
        ["round", ...RUN_HEADERS],
        lookups.map((r) => [String(r.round ?? "-"), ...runRow(r)]),
      ),
    );
  }
  const importRun = results.importRun;
  if (importRun) {
    out.push(
      "",
      `Lookups of existing customers at c=${importRun.concurrency} during npm run import of ${count(importRun.rows)} rows ` +
        `(${f(importRun.seconds, 1)} s, exit code ${importRun.exitCode})`,
      table(
        ["requests", "errors", "p50", "p99", "max", "load"],
        [
          [
            count(importRun.requests),
            String(importRun.errors),
            f(importRun.latencyMs.p50),
            f(importRun.latencyMs.p99),
            f(importRun.latencyMs.max),
            f(importRun.load),
          ],
        ],
      ),
    );
  }
  const flat = section("flat");
  if (flat.length) {
    out.push(
      "",
      "Flat in table size: lookups at c=1, preloaded with plain INSERTs, never ANALYZEd",
    );
    out.push(table(RUN_HEADERS, flat.map(runRow)));
  }
  const distance = section("distance");
  if (distance.length) {
    out.push("", "Distance: c=1, every database round trip delayed by a TCP proxy");
    out.push(
      table(
        ["workload", "away ms", "ours p50", "minimal p50", "difference", "ours DB ms/call", "load"],
        distance
          .filter((r) => r.implementation === "ours")
          .map((r) => {
            const c = compare(
              runs,
              "distance",
              r.workload,
              1,
              (x) => x.latencyMs.p50,
              r.distanceMs,
            );
            return [
              r.workload,
              String(r.distanceMs),
              f(c?.ours),
              f(c?.minimal),
              f(c?.difference),
              f(r.dbMsPerCall, 3),
              f(r.load),
            ];
          }),
      ),
    );
  }
  if (results.profile) {
    const p = results.profile;
    out.push("", `Profile of the service (${results.profile.file})`);
    out.push(table(RUN_HEADERS, section("profile").map(runRow)));
    out.push(renderProfile(p));
  }
  out.push("", ...renderStatements(results));
  const problems = runs
    .flatMap((r) =>
      r.problems.map(
        (p) => `${r.section} ${r.implementation} ${r.workload} c${r.concurrency}: ${p}`,
      ),
    )
    .concat((results.importRun?.problems ?? []).map((p) => `import lookups: ${p}`));
  if (problems.length)
    out.push("", "Problems (first few per run):", ...problems.map((p) => `  ${p}`));
  const goals = evaluateGoals(runs, results.importRun);
  if (goals.length) {
    out.push("", "Goals (issues 24, 13 and 11)");
    out.push(
      table(
        ["goal", "measured", "status"],
        goals.map((g) => [g.goal, g.measured, g.met ? "met" : "MISSED"]),
      ),
    );
  }
  out.push(
    "",
    `Invariant violations in the service's database after each section: ${results.invariantViolations}`,
  );
  return out.join("\n");
}
