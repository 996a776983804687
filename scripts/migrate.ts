/**
 * Applies pending migrations from drizzle/ (lib/db/migrate.ts), then says what it did.
 *
 * - `npm run db:migrate`: the database the configuration names, or the embedded one.
 * - `npm run vercel-build` runs it with `--deploy` before bundling the function: it needs a
 *   database URL, and a preview build refuses to migrate the production database
 *   (lib/db/deployment.ts). Production builds record their database as production.
 *
 * Which URL: DATABASE_URL_UNPOOLED (a direct connection, as Neon's integration provides)
 * else DATABASE_URL, both taken from the same place: a DATABASE_URL given in the environment
 * (the command line, the CI job) always wins over anything in `.env`, so
 * `DATABASE_URL=<local> npm run db:migrate` never migrates a URL that `.env` holds.
 * It names the database it is about to change (host and database, never the password).
 */
import { parseArgs } from "node:util";
import { readConfig } from "../lib/config.js";
import { openConnection } from "../lib/db/client.js";
import {
  type BuildTarget,
  decideMigration,
  locateDatabase,
  recordProductionDatabase,
} from "../lib/db/deployment.js";
import { describeError } from "../lib/errors.js";
import { loadDotEnv } from "./env.js";

const { values } = parseArgs({ options: { deploy: { type: "boolean", default: false } } });

const environment = { ...process.env };
loadDotEnv();
const source = ["DATABASE_URL", "DATABASE_URL_UNPOOLED"].some((name) => environment[name]?.trim())
  ? environment
  : process.env;
const config = readConfig({
  ...process.env,
  DATABASE_URL: source.DATABASE_URL_UNPOOLED?.trim() || source.DATABASE_URL?.trim() || "",
});
const variable = source.DATABASE_URL_UNPOOLED?.trim() ? "DATABASE_URL_UNPOOLED" : "DATABASE_URL";
const where = source === environment ? "the environment" : ".env";
const target: BuildTarget = config.VERCEL_ENV ?? "preview";

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

if (values.deploy && !config.DATABASE_URL) {
  fail(
    "No database configured for this deployment: set DATABASE_URL (or connect the Neon " +
      "integration, which sets DATABASE_URL and DATABASE_URL_UNPOOLED) in the project's " +
      "environment variables.",
  );
}

const connection = await openConnection(config).catch((error: unknown) =>
  fail(`Could not open the database: ${describeError(error)}`),
);
try {
  let name = `the embedded database (${config.PGLITE_DIR})`;
  if (config.DATABASE_URL) {
    const here = await locateDatabase(connection.db, config.DATABASE_URL);
    name = `${here.host}:${here.port}/${here.database} (${variable} from ${where})`;
    if (values.deploy) {
      const decision = await decideMigration(connection.db, target, here);
      if (!decision.allowed) fail(`Refusing to migrate: ${decision.reason}`);
      console.log(`Migrating ${name} for a ${target} build.`);
    } else {
      console.log(`Migrating ${name}.`);
    }
    const { applied } = await connection.migrate();
    if (values.deploy && target === "production") {
      await recordProductionDatabase(connection.db, here);
    }
    console.log(`${applied.length} migration(s) applied; ${name} is up to date.`);
  } else {
    // The embedded database migrates itself when opened.
    console.log(`${name} is up to date.`);
  }
} catch (error) {
  fail(`Migrations failed: ${describeError(error)}`);
} finally {
  await connection.close();
}
