/**
 * The function as Vercel deploys it: the Build Output that `npm run vercel-build` writes,
 * checked for what it ships and run the way Vercel's Node launcher runs it (a fresh process
 * imports the bundle and calls its fetch export) against a real database.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFunction } from "../scripts/build-function.js";
import { type NeonWsProxy, startNeonWsProxy } from "../scripts/neon-ws-proxy.js";
import {
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";

const run = promisify(execFile);
const LIMIT_BYTES = 1024 * 1024;

let output: string;
let functionDir: string;

beforeAll(async () => {
  output = await mkdtemp(join(tmpdir(), "identify-build-"));
  await buildFunction(output);
  functionDir = join(output, "functions/api/identify.func");
});
afterAll(() => rm(output, { recursive: true, force: true }));

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

  it("runs on the Node.js version that built it, as a Web handler, within maxDuration", async () => {
    const config = JSON.parse(await readFile(join(functionDir, ".vc-config.json"), "utf8"));
    expect(config).toMatchObject({
      runtime: `nodejs${process.versions.node.split(".")[0]}.x`,
      handler: "index.mjs",
      launcherType: "Nodejs",
      shouldAddHelpers: false,
      maxDuration: 15,
    });
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
      { env: { PATH: process.env.PATH, VERCEL: "1" } },
    );
    expect(stdout).toMatch(/cold-start \{"status":503/);
  });
});
