/**
 * Applies pending migrations from drizzle/ (lib/db/migrate.ts), then says what it did.
 *
 * - `npm run db:migrate [-- --migrate-production]`: the database the configuration names, or
 *   the embedded one. The database a production build recorded as production is refused
 *   unless the flag says so: a checkout may carry migrations production has not shipped.
 * - `npm run vercel-build` runs it with `--deploy` before bundling the function. It needs a
 *   database URL; when it is given both DATABASE_URL (what the function uses) and
 *   DATABASE_URL_UNPOOLED (what migrations use) they must reach the same database; a preview
 *   build refuses to migrate the production database (lib/db/deployment.ts); and every build
 *   records, in the database, which environment built it and the guardrails it runs with.
 *
 * Which URL: DATABASE_URL_UNPOOLED (a direct connection, as Neon's integration provides)
 * else DATABASE_URL, both taken from the same place: a DATABASE_URL given in the environment
 * (the command line, the CI job) always wins over anything in `.env`, so
 * `DATABASE_URL=<local> npm run db:migrate` never migrates a URL that `.env` holds.
 * It names the database it is about to change (what the server calls it, the URL's host, and
 * the variable that holds the URL; never the password), and every refusal or failure names
 * that variable: the configuration is read once, each URL parsed under its own name.
 */
import { pathToFileURL } from "node:url";
import { type Config, readConfig } from "../lib/config.js";
import { type Connection, openConnection } from "../lib/db/client.js";
import type { DatabaseUrl } from "../lib/db/database-url.js";
import {
  type BuildTarget,
  type DatabaseIdentity,
  decideMigration,
  describeDatabase,
  identicalDatabases,
  identifyDatabase,
  recordDeployment,
} from "../lib/db/deployment.js";
import { checkJunkPatterns, guardrailsFrom } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import { guardrailChangeNotice } from "../lib/relink.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine } from "./selector.js";

const USAGE = "Usage: npm run db:migrate [-- --migrate-production]   (vercel-build adds --deploy)";

/** A refusal or failure whose message says it all: main prints it and exits 1. */
class Refusal extends Error {}

function fail(message: string): never {
  throw new Refusal(message);
}

/** Migrates as the module comment says; @throws Refusal with what to print. */
async function migrate(args: string[]): Promise<void> {
  // parseCommandLine, never parseArgs's own message, which quotes what it cannot read (a
  // stray argument may be a URL with its password).
  const values = (() => {
    try {
      return parseCommandLine(
        args,
        {
          deploy: { type: "boolean", default: false },
          "migrate-production": { type: "boolean", default: false },
        },
        USAGE,
      );
    } catch (error) {
      return fail(describeError(error));
    }
  })();
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const environment = { ...process.env };
  loadDotEnv();
  const source = ["DATABASE_URL", "DATABASE_URL_UNPOOLED"].some((name) => environment[name]?.trim())
    ? environment
    : process.env;
  const where = source === environment ? "the environment" : ".env";

  /**
   * The configuration, read once, with both URLs from the same place: each parsed under its own
   * name, so every message about one names the variable that holds it.
   */
  const config: Config = (() => {
    try {
      // A deploy build builds a deployment, whether or not Vercel exposes VERCEL and VERCEL_ENV.
      const read = readConfig(
        {
          ...process.env,
          DATABASE_URL: source.DATABASE_URL ?? "",
          DATABASE_URL_UNPOOLED: source.DATABASE_URL_UNPOOLED ?? "",
        },
        { deployment: values.deploy },
      );
      // It records the guardrails it deploys: a malformed junk list fails it before anything.
      if (values.deploy) guardrailsFrom(read);
      return read;
    } catch (error) {
      return fail(describeError(error));
    }
  })();
  /** What the migrations go through: the direct connection when there is one. */
  const url: DatabaseUrl | undefined = config.DATABASE_URL_UNPOOLED ?? config.DATABASE_URL;
  const target: BuildTarget = config.VERCEL_ENV ?? "preview";

  if (values.deploy && !url) {
    fail(
      "No database configured for this deployment: set DATABASE_URL (or connect the Neon " +
        "integration, which sets DATABASE_URL and DATABASE_URL_UNPOOLED) in the project's " +
        "environment variables.",
    );
  }

  /** Where `url` connects, and the variable (and place) it came from; never the password. */
  const named = (which: DatabaseUrl) =>
    `${which.host}:${which.port} (${which.variable} from ${where})`;

  const open = (which: DatabaseUrl | undefined) =>
    openConnection(config, which).catch((error: unknown) =>
      fail(
        `Could not open the database${which ? ` at ${named(which)}` : ""}: ${describeError(error)}`,
      ),
    );

  /**
   * What the function's own URL reaches, when the build was given both: the same database as
   * the one about to be migrated, or the build stops.
   */
  async function checkPooledReachesTheSame(here: DatabaseIdentity): Promise<void> {
    const { DATABASE_URL: pooled, DATABASE_URL_UNPOOLED: unpooled } = config;
    if (!pooled || !unpooled) return;
    const connection = await open(pooled);
    try {
      const there = await identifyDatabase(connection.db);
      if (!identicalDatabases(there, here)) {
        fail(
          "Refusing to migrate: DATABASE_URL and DATABASE_URL_UNPOOLED reach different " +
            `databases: ${describeDatabase(there)} at ${named(pooled)} and ` +
            `${describeDatabase(here)} at ${named(unpooled)}. The function uses DATABASE_URL ` +
            "and migrations DATABASE_URL_UNPOOLED: point both at the same database (Neon's " +
            "integration sets both, per environment).",
        );
      }
    } finally {
      await connection.close();
    }
  }

  const connection: Connection = await open(url);
  try {
    if (!url) {
      // The embedded database migrates itself when opened.
      const applied = connection.migratedOnOpen?.applied.length ?? 0;
      console.log(
        `${applied} migration(s) applied; the embedded database (${config.PGLITE_DIR}) is up to date.`,
      );
    } else {
      const here = await identifyDatabase(connection.db);
      const name = `${describeDatabase(here)} at ${named(url)}`;
      if (values.deploy) {
        await checkPooledReachesTheSame(here);
        const decision = await decideMigration(connection.db, target, here);
        if (!decision.allowed) fail(`Refusing to migrate: ${decision.reason} (${named(url)})`);
        // A pattern PostgreSQL refuses fails the build, not the deployment's requests.
        await checkJunkPatterns(connection.db, config);
        console.log(`Migrating ${name} for a ${target} build.`);
      } else {
        console.log(`Migrating ${name}.`);
      }
      const { applied } = await connection.migrate({
        allowProduction: (values.deploy && target === "production") || values["migrate-production"],
      });
      if (values.deploy) {
        const role = target === "production" ? "production" : "preview";
        // Before the record is replaced: a change of junk lists leaves customers to relink.
        const notice = await guardrailChangeNotice(connection.db, guardrailsFrom(config));
        if (notice) console.log(notice);
        await recordDeployment(connection.db, role, here, guardrailsFrom(config));
      }
      console.log(`${applied.length} migration(s) applied; ${name} is up to date.`);
    }
  } catch (error) {
    if (error instanceof Refusal) throw error;
    fail(`Migrations failed${url ? ` on ${named(url)}` : ""}: ${describeError(error)}`);
  } finally {
    await connection.close();
  }
}

/**
 * `npm run db:migrate` (or vercel-build's `--deploy`) with `args`; resolves to its exit code,
 * having printed why when it is not 0.
 */
export async function main(args: string[]): Promise<number> {
  try {
    await migrate(args);
    return 0;
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    console.error(error.message);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2));
}
