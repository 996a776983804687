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
 * It names the database it is about to change (what the server calls it, and the URL's host;
 * never the password).
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Config, readConfig } from "../lib/config.js";
import { type Connection, openConnection } from "../lib/db/client.js";
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
import { loadDotEnv } from "./env.js";

const USAGE = "Usage: npm run db:migrate [-- --migrate-production]   (vercel-build adds --deploy)";

/** A refusal or failure whose message says it all: main prints it and exits 1. */
class Refusal extends Error {}

function fail(message: string): never {
  throw new Refusal(message);
}

/** Migrates as the module comment says; @throws Refusal with what to print. */
async function migrate(args: string[]): Promise<void> {
  const { values } = (() => {
    try {
      return parseArgs({
        args,
        options: {
          deploy: { type: "boolean", default: false },
          "migrate-production": { type: "boolean", default: false },
          help: { type: "boolean", default: false },
        },
      });
    } catch (error) {
      return fail(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
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
  const pooledUrl = source.DATABASE_URL?.trim() || undefined;
  const unpooledUrl = source.DATABASE_URL_UNPOOLED?.trim() || undefined;
  const variable = unpooledUrl ? "DATABASE_URL_UNPOOLED" : "DATABASE_URL";

  /** The configuration with `url` as the database to connect to. */
  const configFor = (url: string | undefined): Config => {
    try {
      return readConfig({ ...process.env, DATABASE_URL: url ?? "" });
    } catch (error) {
      return fail(describeError(error));
    }
  };
  const config = configFor(unpooledUrl ?? pooledUrl);
  const target: BuildTarget = config.VERCEL_ENV ?? "preview";

  if (values.deploy && !config.DATABASE_URL) {
    fail(
      "No database configured for this deployment: set DATABASE_URL (or connect the Neon " +
        "integration, which sets DATABASE_URL and DATABASE_URL_UNPOOLED) in the project's " +
        "environment variables.",
    );
  }

  const open = (which: Config) =>
    openConnection(which).catch((error: unknown) =>
      fail(`Could not open the database: ${describeError(error)}`),
    );

  const hostOf = (url: string) => new URL(url).host;

  /**
   * What the function's own URL reaches, when the build was given both: the same database as
   * the one about to be migrated, or the build stops.
   */
  async function checkPooledReachesTheSame(here: DatabaseIdentity): Promise<void> {
    if (!pooledUrl || !unpooledUrl) return;
    const pooled = await open(configFor(pooledUrl));
    try {
      const there = await identifyDatabase(pooled.db);
      if (!identicalDatabases(there, here)) {
        fail(
          "Refusing to migrate: DATABASE_URL and DATABASE_URL_UNPOOLED reach different " +
            `databases: ${describeDatabase(there)} at ${hostOf(pooledUrl)} and ` +
            `${describeDatabase(here)} at ${hostOf(unpooledUrl)}. The function uses DATABASE_URL ` +
            "and migrations DATABASE_URL_UNPOOLED: point both at the same database (Neon's " +
            "integration sets both, per environment).",
        );
      }
    } finally {
      await pooled.close();
    }
  }

  const connection: Connection = await open(config);
  try {
    if (!config.DATABASE_URL) {
      // The embedded database migrates itself when opened.
      const applied = connection.migratedOnOpen?.applied.length ?? 0;
      console.log(
        `${applied} migration(s) applied; the embedded database (${config.PGLITE_DIR}) is up to date.`,
      );
    } else {
      const here = await identifyDatabase(connection.db);
      const name = `${describeDatabase(here)} at ${hostOf(config.DATABASE_URL)} (${variable} from ${where})`;
      if (values.deploy) {
        await checkPooledReachesTheSame(here);
        const decision = await decideMigration(connection.db, target, here);
        if (!decision.allowed) fail(`Refusing to migrate: ${decision.reason}`);
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
        await recordDeployment(connection.db, role, here, guardrailsFrom(config));
      }
      console.log(`${applied.length} migration(s) applied; ${name} is up to date.`);
    }
  } catch (error) {
    if (error instanceof Refusal) throw error;
    fail(`Migrations failed: ${describeError(error)}`);
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
