/**
 * `npm run bench:cold-start`: the deployed function's cold start beside a driver-only
 * function, on each Node.js binary given. Builds the real Build Output (the function Vercel
 * deploys: scripts/build-function.ts) and bundles the driver-only baseline
 * (cold-start/driver-only.ts) the same way, then for each: a fresh process imports the module
 * as Vercel's launcher does and sends one POST /identify (a lookup of a stored customer)
 * through the Neon driver and a WebSocket proxy to a fresh local database. Reports the
 * median, min and max of process start → first response over --runs runs, alternating the two
 * functions so that machine noise falls on both.
 *
 *   npm run bench:cold-start -- [--runs 11] [--node /path/to/node24 ...] [--also name=bundle.mjs ...]
 *
 * `--also` adds a prebuilt function bundle to the alternation (e.g. another checkout's
 * .vercel/output/functions/api/identify.func/index.mjs): candidates compared in one run, under
 * the same machine noise, each against the same driver-only baseline.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { readConfig } from "../lib/config.js";
import { openConnection } from "../lib/db/client.js";
import { identify } from "../lib/identify.js";
import { buildFunction, bundleFunction } from "../scripts/build-function.js";
import { startNeonWsProxy } from "../scripts/neon-ws-proxy.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const INVOKE = join(ROOT, "bench/cold-start/invoke.mjs");
const BODY = JSON.stringify({ email: "doc@hillvalley.edu" });

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "11" },
    node: { type: "string", multiple: true, default: [process.execPath] },
    also: { type: "string", multiple: true, default: [] },
  },
});
/** The extra bundles of --also, by name. */
const also = values.also.map((entry) => {
  const [name = "", ...path] = entry.split("=");
  if (!name || path.length === 0) throw new Error(`--also takes name=path, not "${entry}"`);
  return { name, path: path.join("=") };
});
const runs = Number(values.runs);
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

interface Sample {
  status: number;
  importedMs: number;
  respondedMs: number;
  wallMs: number;
}

/** One fresh process: spawn → the line it prints after its first response. */
function coldStart(node: string, handler: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(node, [INVOKE, handler, BODY], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      const wallMs = performance.now() - started;
      const line = out
        .split("\n")
        .find((l) => l.startsWith("cold-start "))
        ?.slice("cold-start ".length);
      if (code !== 0 || !line) {
        reject(new Error(`${handler} on ${node} exited ${code}: ${err.slice(-2000)}`));
        return;
      }
      resolve({ ...(JSON.parse(line) as Omit<Sample, "wallMs">), wallMs });
    });
  });
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

async function main() {
  const name = `identify_cold_start_${randomBytes(4).toString("hex")}`;
  const admin = await openConnection(readConfig({ DATABASE_URL: adminUrl }));
  await admin.db.execute(sql.raw(`create database ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const work = await mkdtemp(join(tmpdir(), "identify-cold-start-"));
  const proxy = await startNeonWsProxy({ allow: [`${url.hostname}:${url.port || 5432}`] });
  try {
    const setup = await openConnection(readConfig({ DATABASE_URL: url.toString() }));
    await setup.migrate();
    await identify(
      setup.db,
      { email: "doc@hillvalley.edu", phoneNumber: "1985" },
      { lockTimeoutMs: 5000, requestId: "cold-start-seed" },
    );
    await setup.close();

    const bytes = await buildFunction();
    const ours = join(ROOT, ".vercel/output/functions/api/identify.func/index.mjs");
    const baseline = join(work, "driver-only.mjs");
    await bundleFunction(join(ROOT, "bench/cold-start/driver-only.ts"), baseline);
    const baselineBytes = (await stat(baseline)).size;

    // Only what Vercel would give the function: no .env, no developer settings.
    const env = {
      PATH: process.env.PATH,
      VERCEL: "1",
      VERCEL_ENV: "production",
      // invoke.mjs sends no key: the deployment is opened on purpose, so that the request
      // measured is served rather than refused as misconfigured.
      ALLOW_PUBLIC_ACCESS: "true",
      DATABASE_URL: url.toString(),
      NEON_WS_PROXY: proxy.url,
    };
    console.log(
      `Cold start, process start → first response, ${runs} runs each, alternating; ` +
        `identify function ${(bytes / 1024).toFixed(0)} KiB, driver-only ${(baselineBytes / 1024).toFixed(0)} KiB`,
    );
    console.log(
      "| node | function | median ms | min | max | import median ms | first request median ms | ratio |",
    );
    console.log("|---|---|---|---|---|---|---|---|");
    for (const node of values.node) {
      const version = await new Promise<string>((resolve) => {
        const child = spawn(node, ["--version"]);
        let v = "";
        child.stdout.on("data", (c: Buffer) => {
          v += c.toString();
        });
        child.once("exit", () => resolve(v.trim()));
      });
      const functions = [
        { name: "identify", path: ours },
        ...also,
        { name: "driver-only", path: baseline },
      ];
      // One unmeasured start of each warms the OS file cache, as on a warm Vercel host.
      for (const { path } of functions) await coldStart(node, path, env);
      const samples: Record<string, Sample[]> = Object.fromEntries(
        functions.map(({ name }) => [name, []]),
      );
      for (let i = 0; i < runs; i++) {
        for (const { name, path } of functions)
          samples[name]?.push(await coldStart(node, path, env));
      }
      const base = median((samples["driver-only"] ?? []).map((s) => s.wallMs));
      for (const [fn, list] of Object.entries(samples)) {
        if (list.some((s) => s.status !== 200)) throw new Error(`${fn} answered non-200`);
        const walls = list.map((s) => s.wallMs);
        console.log(
          `| ${version} | ${fn} | ${median(walls).toFixed(0)} | ${Math.min(...walls).toFixed(0)} | ` +
            `${Math.max(...walls).toFixed(0)} | ${median(list.map((s) => s.importedMs)).toFixed(0)} | ` +
            `${median(list.map((s) => s.respondedMs - s.importedMs)).toFixed(0)} | ` +
            `${(median(walls) / base).toFixed(2)}× |`,
        );
      }
    }
  } finally {
    await proxy.close();
    await rm(work, { recursive: true, force: true });
    await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
    await admin.close();
  }
}

await main();
