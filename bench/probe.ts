/**
 * Calibrates the latency model: how long one bare round trip (`select 1`) takes through the
 * same driver and WebSocket proxy the service uses, with the proxy adding a given delay.
 * The Neon driver's settings are process-wide, so each probe runs in a child process of its
 * own. Comparing identify's added latency with this figure says how many round trips
 * a request makes, whatever the bridge's timers add on top of the nominal delay.
 */
import { spawn } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { sql } from "drizzle-orm";
import { readConfig } from "../lib/config.js";
import { openConnection } from "../lib/db/client.js";
import { startNeonWsProxy } from "../scripts/neon-ws-proxy.js";

const WARMUP = 50;
const SAMPLES = 300;

/** Result of one probe: the p50 of a bare round trip, in ms. */
export interface RoundTripProbe {
  latencyMs: number;
  p50Ms: number;
}

/** Runs the probe in a child process against `databaseUrl` with the given bridge delay. */
export function probeRoundTrip(databaseUrl: string, latencyMs: number): Promise<RoundTripProbe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        BENCH_PROXY_LATENCY_MS: String(latencyMs),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`round-trip probe exited with code ${code}`);
        resolve(JSON.parse(output) as RoundTripProbe);
      } catch (error) {
        reject(error);
      }
    });
  });
}

async function runProbe(): Promise<void> {
  const latencyMs = Number(process.env.BENCH_PROXY_LATENCY_MS ?? 0);
  const { host } = new URL(process.env.DATABASE_URL ?? "");
  const proxy = await startNeonWsProxy({
    allow: [host.includes(":") ? host : `${host}:5432`],
    latencyMs,
  });
  const config = readConfig({
    DATABASE_URL: process.env.DATABASE_URL,
    NEON_WS_PROXY: proxy.url,
    DB_POOL_MAX: "1",
  });
  const connection = await openConnection(config);
  try {
    const times: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const started = performance.now();
      await connection.db.execute(sql`select 1`);
      if (i >= WARMUP) times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const result: RoundTripProbe = {
      latencyMs,
      p50Ms: times[Math.ceil(times.length / 2) - 1] ?? Number.NaN,
    };
    process.stdout.write(JSON.stringify(result));
  } finally {
    await connection.close();
    await proxy.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runProbe().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
