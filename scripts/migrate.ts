/**
 * Applies pending migrations from drizzle/. Safe to run twice, and from several processes at
 * once (a session advisory lock serializes them).
 *
 * - `npm run db:migrate`: to DATABASE_URL, or the embedded database when it is unset.
 * - `npm run vercel-build` (`--deploy`): Vercel runs it before a deployment goes live. It
 *   migrates DATABASE_URL_UNPOOLED when set (Neon's integration injects it: a direct
 *   connection, which a session lock needs), else DATABASE_URL; with neither it fails the
 *   build rather than deploy a function with no schema.
 */
import { parseArgs } from "node:util";
import { readConfig } from "../lib/config.js";
import { openConnection } from "../lib/db/client.js";
import { loadDotEnv } from "./env.js";

loadDotEnv();

const { values } = parseArgs({ options: { deploy: { type: "boolean", default: false } } });
const url = process.env.DATABASE_URL_UNPOOLED?.trim() || process.env.DATABASE_URL?.trim();

if (values.deploy && !url) {
  console.error(
    "No database configured for this deployment: set DATABASE_URL (or connect the Neon integration, " +
      "which sets DATABASE_URL and DATABASE_URL_UNPOOLED) in the project's environment variables.",
  );
  process.exit(1);
}

const target = url
  ? `${process.env.DATABASE_URL_UNPOOLED?.trim() ? "DATABASE_URL_UNPOOLED" : "DATABASE_URL"} (${new URL(url).host})`
  : `the embedded database (${readConfig().PGLITE_DIR})`;
const connection = await openConnection(readConfig({ ...process.env, DATABASE_URL: url }))
  .then((opened) => opened.migrate().then(() => opened))
  .catch((error: unknown) => {
    console.error(
      `Migrations failed on ${target}: ${error instanceof Error ? error.message : error}`,
    );
    process.exit(1);
  });
await connection.close();
console.log(`Migrations are up to date on ${target}.`);
