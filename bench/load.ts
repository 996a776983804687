/**
 * The closed-loop load generator: N workers, each sending its next request only when its
 * previous one has been answered, over N kept-alive connections (an undici Pool). Written
 * here rather than taken from autocannon because every request needs its own body (fresh
 * customers, fresh merge pairs), every answer is checked against what that request should
 * have done, and latencies are kept exactly (sub-millisecond, every sample) rather than in
 * a histogram of whole milliseconds.
 */
import { Pool } from "undici";

/** The body of a 200 from POST /identify. */
export interface ContactBody {
  primaryContactId: number;
  emails: string[];
  phoneNumbers: string[];
  secondaryContactIds: number[];
}

/** One request to send, with the check its answer must pass. */
export interface PlannedRequest {
  body: string;
  /** Returns a complaint when the answer is not what this request should produce. */
  check(contact: ContactBody): string | undefined;
}

/** Hands out requests; undefined means none are left (merge pairs ran out). */
export type RequestSource = () => PlannedRequest | undefined;

/** What one closed-loop run measured. */
interface LoadResult {
  /** Requests answered (any status) or failed in transport. */
  requests: number;
  /** Milliseconds from sending to the last body byte, one per request. */
  latenciesMs: Float64Array;
  elapsedMs: number;
  /** Non-200 answers and transport failures. */
  errors: number;
  /** 200 answers that did not say what the request should have done. */
  wrongAnswers: number;
  /** A few examples of either, for the report. */
  problems: string[];
  /** The source ran dry before the time was up. */
  exhausted: boolean;
}

/** The parts of a run a caller chooses. */
interface LoadSpec {
  origin: string;
  /** Sent as the bearer token (the service runs with API keys on). */
  apiKey: string;
  concurrency: number;
  durationMs: number;
  source: RequestSource;
  /** Stop early, once this settles (the import section: when the import ends). */
  until?: Promise<unknown>;
}

const MAX_PROBLEMS = 5;

/**
 * Runs `concurrency` workers against POST /identify for `durationMs` (or until the source
 * runs dry, or `until` settles) and returns exact per-request latencies. Opens its own
 * connections and closes them at the end, so no idle keep-alive socket outlives the run.
 */
export async function runClosedLoop(spec: LoadSpec): Promise<LoadResult> {
  const pool = new Pool(spec.origin, {
    connections: spec.concurrency,
    pipelining: 1,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const latencies: number[] = [];
  const problems: string[] = [];
  let errors = 0;
  let wrongAnswers = 0;
  let exhausted = false;
  const note = (problem: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
  };

  const started = performance.now();
  const deadline = started + spec.durationMs;
  let settled = false;
  const settle = () => {
    settled = true;
  };
  spec.until?.then(settle, settle);
  const worker = async () => {
    while (performance.now() < deadline && !settled) {
      const planned = spec.source();
      if (!planned) {
        exhausted = true;
        return;
      }
      const sent = performance.now();
      try {
        const response = await pool.request({
          path: "/identify",
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${spec.apiKey}`,
          },
          body: planned.body,
        });
        const text = await response.body.text();
        latencies.push(performance.now() - sent);
        if (response.statusCode !== 200) {
          errors++;
          note(`HTTP ${response.statusCode}: ${text.slice(0, 160)}`);
          continue;
        }
        const contact = (JSON.parse(text) as { contact?: ContactBody }).contact;
        const complaint = contact ? planned.check(contact) : "no contact in the body";
        if (complaint) {
          wrongAnswers++;
          note(`wrong answer to ${planned.body}: ${complaint}`);
        }
      } catch (error) {
        latencies.push(performance.now() - sent);
        errors++;
        note(`transport: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const elapsedMs = performance.now() - started;
  await pool.close();
  return {
    requests: latencies.length,
    latenciesMs: Float64Array.from(latencies),
    elapsedMs,
    errors,
    wrongAnswers,
    problems,
    exhausted,
  };
}

/** Latency summary of one run, in milliseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Exact nearest-rank percentiles of a run's latencies. */
export function summarize(latenciesMs: Float64Array): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    p50: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length ? total / sorted.length : Number.NaN,
  };
}
