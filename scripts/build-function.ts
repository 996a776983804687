/**
 * Builds the deployment in Vercel's Build Output API layout (.vercel/output): public/ as
 * static files, and api/identify.ts bundled into ONE module with everything it runs.
 *
 * Why a bundle: Node 22 and 24 resolve each module of a package against its package.json,
 * and drizzle-orm's is 176 KB with 447 exports; importing the unbundled function cost ~800 ms
 * of cold start on Node 24 against ~160 ms for a function with only the driver. One module
 * resolves nothing. Why Build Output: Vercel's own builder for api/ traces files instead of
 * bundling, and shipped the embedded database (16 MB) with every function.
 *
 * The function never opens the embedded database (there is no disk to keep it on), so its
 * module is replaced by one that says so, and PGlite, the file lock and the migrations stay
 * out: migrations run at build time (scripts/migrate.ts).
 *
 * The function's runtime comes from package.json's engines, not from the Node that builds:
 * CI builds on Node 20, which Vercel no longer deploys (functionRuntime below).
 */
import { cp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import { intersects, validRange } from "semver";
import { readConfig } from "../lib/config.js";
import { guardrailsFrom, junkPatternsKey } from "../lib/guardrails.js";
import { FUNCTION_PATHS } from "../lib/routes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where Vercel's CLI and platform look for a prebuilt deployment. */
const OUTPUT_DIR = join(ROOT, ".vercel/output");

/** Longest a request may run on Vercel before it is cut (seconds). */
const MAX_DURATION_SECONDS = 15;

/**
 * Modules of lib/db/client.ts the deployed function must not carry, each replaced by one
 * that refuses with the reason: the embedded database (no disk to keep it on; PGlite alone
 * is 16 MB) and the migration runner (migrations run at build time, scripts/migrate.ts).
 */
const LOCAL_ONLY: Record<string, string> = {
  "./pglite.js": "The embedded database is not part of the deployed function; set DATABASE_URL",
  "./migrate.js": "The deployed function does not migrate; its build runs the migrations",
};

const withoutLocalOnlyModules: Plugin = {
  name: "without-local-only-modules",
  setup(builder) {
    builder.onResolve({ filter: /^\.\/(pglite|migrate)\.js$/ }, (args) =>
      args.importer.endsWith(join("lib", "db", "client.ts"))
        ? { path: args.path, namespace: "local-only" }
        : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: "local-only" }, (args) => ({
      // Every export the client imports from these modules, each refusing when called.
      contents: `const refuse = () => { throw new Error(${JSON.stringify(LOCAL_ONLY[args.path])}); };
        export const openPglite = refuse;
        export const applyMigrations = refuse;`,
      loader: "js",
    }));
  },
};

/**
 * The Node.js majors Vercel runs functions on, newest first: the `NODE_VERSIONS` of the
 * @vercel/build-utils (14.0.5) that Vercel CLI 58.10.0 bundles, less those past their
 * discontinue date (20: 2026-10-01). Vercel refuses to deploy a discontinued runtime, so
 * the list is what a deploy can accept, whichever Node happens to run the build.
 */
export const VERCEL_NODE_MAJORS: readonly number[] = [24, 22];

/**
 * The runtime the function is built for: the newest major Vercel supports that `engines`
 * (package.json's `engines.node`) allows. Vercel picks its build image the same way
 * (semver's `intersects` of each `<major>.x` with the range, newest first), so the build
 * and the function agree; the Node running the build does not matter (CI builds on 20).
 */
export function functionRuntime(
  engines: string,
  supported: readonly number[] = VERCEL_NODE_MAJORS,
): string {
  if (!validRange(engines)) {
    throw new Error(`package.json engines.node "${engines}" is not a semver range`);
  }
  const major = [...supported]
    .sort((a, b) => b - a)
    .find((candidate) => intersects(`${candidate}.x`, engines));
  if (major === undefined) {
    throw new Error(
      `package.json engines.node "${engines}" allows none of the Node.js majors Vercel runs (${supported.join(", ")})`,
    );
  }
  return `nodejs${major}.x`;
}

/** package.json's `engines.node`: the Node.js versions the project says it runs on. */
async function enginesNode(): Promise<string> {
  const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
    engines?: { node?: string };
  };
  if (!manifest.engines?.node) throw new Error("package.json has no engines.node");
  return manifest.engines.node;
}

/** The region(s) from vercel.json: the one setting that puts the function near its database. */
async function regions(): Promise<string[] | undefined> {
  const config = JSON.parse(await readFile(join(ROOT, "vercel.json"), "utf8")) as {
    regions?: string[];
  };
  return config.regions;
}

/**
 * Bundles one function entry point into one ES module for Node, as deployed. The benchmark
 * bundles its driver-only comparison with this too, so both are loaded the same way.
 * `checkedJunkPatterns` (junkPatternsKey) records in the bundle the junk patterns the deploy
 * build had PostgreSQL compile, so that the function does not ask again (lib/guardrails.ts).
 */
export async function bundleFunction(
  entry: string,
  outfile: string,
  checkedJunkPatterns?: string,
): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    // The oldest Node engines.node allows, not the runtime's: the same bundle then loads on
    // every Node the project runs on (the tests and benchmarks import it on the local one).
    target: "node20",
    // node-postgres tries this optional native binding; nothing here installs it.
    external: ["pg-native"],
    plugins: [withoutLocalOnlyModules],
    // The bundle is only ever deployed: its configuration is a deployment's whatever the
    // environment says (lib/config.ts), so it needs API_KEYS even where a project does not
    // expose Vercel's VERCEL and VERCEL_ENV.
    define: {
      IDENTIFY_DEPLOYED_BUILD: "true",
      ...(checkedJunkPatterns === undefined
        ? {}
        : { IDENTIFY_BUILD_CHECKED_JUNK_PATTERNS: JSON.stringify(checkedJunkPatterns) }),
    },
    // CommonJS dependencies (ws, pg) call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    legalComments: "none",
    // Smaller to load; identifiers stay, so stack traces in the logs still read.
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
  });
}

/**
 * Writes the deployment into `output`; returns the function's bundle size in bytes.
 * `checkedJunkPatterns`: see bundleFunction.
 */
export async function buildFunction(
  output = OUTPUT_DIR,
  checkedJunkPatterns?: string,
): Promise<number> {
  const functionDir = join(output, "functions/api/identify.func");
  await rm(output, { recursive: true, force: true });
  await mkdir(functionDir, { recursive: true });
  await cp(join(ROOT, "public"), join(output, "static"), { recursive: true });

  const bundle = join(functionDir, "index.mjs");
  await bundleFunction(join(ROOT, "api/identify.ts"), bundle, checkedJunkPatterns);

  const region = await regions();
  const functionConfig = {
    runtime: functionRuntime(await enginesNode()),
    handler: "index.mjs",
    launcherType: "Nodejs",
    // Helpers decorate the legacy (req, res) signature; the handler is a Web fetch handler.
    shouldAddHelpers: false,
    maxDuration: MAX_DURATION_SECONDS,
    ...(region ? { regions: region } : {}),
  };
  await writeFile(
    join(functionDir, ".vc-config.json"),
    `${JSON.stringify(functionConfig, null, 2)}\n`,
  );
  await writeFile(join(functionDir, "package.json"), `${JSON.stringify({ type: "module" })}\n`);

  const config = {
    version: 3,
    // Every path of lib/routes.ts to the one function, which keeps the request's own URL and
    // routes on it (api/identify.ts).
    routes: [{ handle: "filesystem" }, { src: FUNCTION_PATHS, dest: "/api/identify" }],
  };
  await writeFile(join(output, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  return (await stat(bundle)).size;
}

const USAGE = `Usage: npm run build [-- --after-deploy-migration]
  Writes the Vercel Build Output to .vercel/output: api/identify.ts bundled into one module,
  public/ as static files, and the routes of lib/routes.ts; prints the bundle's size.
  npm run vercel-build migrates the deployment's database first, then runs this with
  --after-deploy-migration: the migration had PostgreSQL compile this environment's junk
  patterns, so the bundle records them and the function does not check them again.`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      help: { type: "boolean", short: "h" },
      "after-deploy-migration": { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
  } else {
    const checked = values["after-deploy-migration"]
      ? junkPatternsKey(guardrailsFrom(readConfig()))
      : undefined;
    const bytes = await buildFunction(OUTPUT_DIR, checked);
    console.log(`Built ${OUTPUT_DIR}: api/identify ${(bytes / 1024).toFixed(0)} KiB.`);
  }
}
