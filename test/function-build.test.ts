/**
 * The function as Vercel deploys it: the Build Output that `npm run vercel-build` writes,
 * checked for what it ships and run the way Vercel's Node launcher runs it (a fresh process
 * imports the bundle and calls its fetch export) against a real database.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { satisfies } from "semver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionRuntime, VERCEL_NODE_MAJORS } from "../scripts/build-function.js";
import { type NeonWsProxy, startNeonWsProxy } from "../scripts/neon-ws-proxy.js";
import { builtFunction } from "./support/built-function.js";
import {
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";

const run = promisify(execFile);
const LIMIT_BYTES = 1024 * 1024;

/** The run's Build Output (test/support/built-function.ts), which these tests only read. */
const { output, functionDir } = builtFunction();

describe("the built function", () => {
  it("ships one bundle and its configuration, within 1 MB", async () => {
    const files = await readdir(functionDir, { recursive: true });
    expect(files.sort()).toEqual([".vc-config.json", "index.mjs", "package.json"]);
    let total = 0;
    for (const file of files) total += (await stat(join(functionDir, file))).size;
    expect(total).toBeLessThanOrEqual(LIMIT_BYTES);
  });

  it("holds no embedded database, file lock, migrations or local-only proxy", async () => {
    const bundle = await readFile(join(functionDir, "index.mjs"), "utf8");
    // Each string is unique to what must stay out: PGlite's module, proper-lockfile's
    // messages, the migration runner and its files, and the developer proxy.
    const markers = [
      "@electric-sql/pglite",
      "pglite.wasm",
      "Lock file is already being held",
      "readMigrationFiles",
      "_journal.json",
      "startNeonWsProxy",
    ];
    // A bare boolean per marker: the failure names the marker without printing the bundle.
    expect(markers.filter((marker) => bundle.includes(marker))).toEqual([]);
    expect(bundle.includes("The embedded database is not part of the deployed function")).toBe(
      true,
    );
  });

  it("runs as a Web handler within maxDuration", async () => {
    const config = JSON.parse(await readFile(join(functionDir, ".vc-config.json"), "utf8"));
    expect(config).toMatchObject({
      handler: "index.mjs",
      launcherType: "Nodejs",
      shouldAddHelpers: false,
      maxDuration: 15,
    });
  });

  it("targets a Node.js runtime Vercel still deploys, 22 or newer, whatever Node built it", async () => {
    const config = JSON.parse(await readFile(join(functionDir, ".vc-config.json"), "utf8"));
    const major = Number(/^nodejs(\d+)\.x$/.exec(config.runtime)?.[1]);
    expect(major, config.runtime).toBeGreaterThanOrEqual(22);
    expect(VERCEL_NODE_MAJORS).toContain(major);
  });

  it("targets the newest Vercel runtime that package.json's engines allow", async () => {
    const { engines } = JSON.parse(await readFile("package.json", "utf8"));
    const config = JSON.parse(await readFile(join(functionDir, ".vc-config.json"), "utf8"));
    expect(config.runtime).toBe(`nodejs${Math.max(...VERCEL_NODE_MAJORS)}.x`);
    expect(functionRuntime(engines.node)).toBe(config.runtime);
  });

  it("allows the Node.js running the build (CI builds on 20) in package.json's engines", async () => {
    const { engines } = JSON.parse(await readFile("package.json", "utf8"));
    expect(satisfies(process.versions.node, engines.node)).toBe(true);
  });

  it("refuses engines that allow no runtime Vercel deploys, naming the range", () => {
    expect(() => functionRuntime("^20.16")).toThrow(
      /engines\.node "\^20\.16" allows none of the Node\.js majors Vercel runs \(24, 22\)/,
    );
  });

  it("picks an older supported major when engines stop short of the newest", () => {
    expect(functionRuntime("^20.16 || ^22")).toBe("nodejs22.x");
  });

  it("takes its region from vercel.json's one regions setting", async () => {
    const vercel = JSON.parse(await readFile("vercel.json", "utf8"));
    const config = JSON.parse(await readFile(join(functionDir, ".vc-config.json"), "utf8"));
    expect(config.regions).toEqual(vercel.regions);
  });

  it("routes /identify, /identify/changes and their /api forms, with or without a trailing slash, and nothing else", async () => {
    const { routes } = JSON.parse(await readFile(join(output, "config.json"), "utf8")) as {
      routes: { src?: string; dest?: string }[];
    };
    const target = (path: string) =>
      routes.find((route) => route.src && new RegExp(route.src).test(path))?.dest;
    for (const path of ["/identify", "/identify/", "/api/identify", "/api/identify/"]) {
      expect(target(path), path).toBe("/api/identify");
      expect(target(`${path.replace(/\/$/, "")}/changes`), path).toBe("/api/identify");
      expect(target(`${path.replace(/\/$/, "")}/changes/`), path).toBe("/api/identify");
    }
    for (const path of [
      "/identifyx",
      "/identify/x",
      "/identify/changesx",
      "/api/identify.ts",
      "/",
    ]) {
      expect(target(path), path).toBeUndefined();
    }
  });

  it("copies public/ as static files", async () => {
    expect(await readdir(join(output, "static"))).toEqual(
      expect.arrayContaining(["index.html", "openapi.json"]),
    );
  });
});

describe.skipIf(!postgresAvailable())("the built function on PostgreSQL", () => {
  let database: TestDatabase;
  let proxy: NeonWsProxy;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    const { hostname, port } = new URL(database.url);
    proxy = await startNeonWsProxy({ allow: [`${hostname}:${port || 5432}`] });
  });
  afterAll(async () => {
    await proxy?.close();
    await database?.drop();
  });

  it("answers POST /identify imported as Vercel's launcher imports it", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        "bench/cold-start/invoke.mjs",
        join(functionDir, "index.mjs"),
        JSON.stringify({ email: "doc@hillvalley.edu", phoneNumber: "1985" }),
      ],
      {
        env: {
          PATH: process.env.PATH,
          VERCEL: "1",
          // invoke.mjs sends no key: a deployment without API_KEYS must be opened on purpose.
          ALLOW_PUBLIC_ACCESS: "true",
          DATABASE_URL: database.url,
          NEON_WS_PROXY: proxy.url,
        },
      },
    );
    const line = stdout.split("\n").find((l) => l.startsWith("cold-start "));
    expect(JSON.parse(line?.slice("cold-start ".length) ?? "null")).toMatchObject({ status: 200 });
    expect(stdout).toContain('"outcome":"created"');
  });

  it("refuses to fall back to an embedded database when DATABASE_URL is missing", async () => {
    const { stdout } = await run(
      process.execPath,
      ["bench/cold-start/invoke.mjs", join(functionDir, "index.mjs"), '{"email":"a@b.co"}'],
      { env: { PATH: process.env.PATH, VERCEL: "1", ALLOW_PUBLIC_ACCESS: "true" } },
    );
    expect(stdout).toMatch(/cold-start \{"status":503/);
  });
});
