/**
 * `npm start`: validates the configuration, applies pending migrations, has PostgreSQL check
 * the junk patterns, then serves the function on HOST:PORT (default 127.0.0.1:3000: only this
 * machine, since the service returns personal data; set HOST=0.0.0.0 to serve other
 * machines, e.g. inside a container, and ALLOWED_HOSTS to the names they use) against
 * DATABASE_URL, or the embedded database when it is unset. It links with the guardrails a
 * deploy build recorded in that database, as the tools do (lib/guardrails.ts
 * deployedGuardrails), else with the environment's. Any refusal stops start-up with
 * one log line naming the setting, before the database is opened; among them a HOST other
 * machines reach without API_KEYS (or ALLOW_PUBLIC_ACCESS=true), see readServerConfig. So
 * does the production database with migrations to apply, unless `npm start --
 * --migrate-production` says to (lib/db/migrate.ts). SIGTERM or SIGINT stops it cleanly (see
 * stop()).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getConfig } from "../lib/config.js";
import { closeDatabase, getConnection } from "../lib/db/client.js";
import {
  checkJunkPatternsOnce,
  deployedGuardrails,
  getGuardrails,
  useGuardrails,
} from "../lib/guardrails.js";
import { log } from "../lib/log.js";
import { describeError } from "../lib/redact.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine } from "./selector.js";
import { createIdentifyServer } from "./server.js";
import { readServerConfig } from "./server-config.js";

/**
 * How long requests in flight may take to finish after a stop signal before their
 * connections are cut: below the 10 s a container runtime waits before it kills.
 */
const STOP_GRACE_MS = 5_000;

loadDotEnv();

/** Set once listening. */
let server: Server | undefined;
let stopping = false;

/**
 * Stops on SIGTERM or SIGINT: stops taking connections, closes idle keep-alive ones at once
 * (server.close() does) and lets requests in flight finish, each closing its connection after
 * its response; after STOP_GRACE_MS the rest are cut. Then the database is closed, which
 * releases the embedded database's lock for the next process. Repeated signals are ignored:
 * a terminal's Ctrl-C, or a kill of the process group, reaches both npm and this process,
 * and npm passes its own on.
 */
function stop(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  log("info", "stopping", { signal });
  const closeAndExit = () =>
    closeDatabase().then(
      () => {
        log("info", "stopped");
        process.exit(0);
      },
      (error: unknown) => {
        log("error", "could not close the database", { error: describeError(error) });
        process.exit(1);
      },
    );
  // Still starting: nothing is served yet (a migration in progress rolls back).
  if (!server?.listening) return void closeAndExit();
  const cut = setTimeout(() => server?.closeAllConnections(), STOP_GRACE_MS);
  server.close(() => {
    clearTimeout(cut);
    void closeAndExit();
  });
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

const USAGE = `Usage: npm start [-- --migrate-production]
  Applies pending migrations, then serves POST /identify and GET /identify/changes, and the
  files of public/, on HOST:PORT (default 127.0.0.1:3000), against DATABASE_URL or else the
  embedded database in PGLITE_DIR (default .data). Settings: README.md#configuration.
  --migrate-production  apply pending migrations even to the database a production build
                        recorded as production (a checkout may carry migrations it has not
                        deployed)`;

async function main() {
  // `npm start -- --migrate-production`: see lib/db/migrate.ts.
  // parseCommandLine, never parseArgs's own message, which quotes what it cannot read.
  const values = parseCommandLine(
    process.argv.slice(2),
    { "migrate-production": { type: "boolean" } },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const config = getConfig();
  const { PORT: port, HOST: host, ALLOWED_HOSTS: allowedHosts } = readServerConfig();
  getGuardrails();
  const connection = await getConnection();
  await connection.migrate({ allowProduction: values["migrate-production"] === true });
  // One configuration: the guardrails a deploy build recorded in this database, as the tools
  // apply them; a guardrail variable set here that differs from them stops start-up, naming it.
  const { guardrails, source } = await deployedGuardrails(connection.db);
  useGuardrails(guardrails);
  log("info", "guardrails", { source });
  // Before listening, so that a pattern PostgreSQL refuses stops start-up; the handler's own
  // call then finds them checked.
  await checkJunkPatternsOnce(connection.db);
  if (stopping) return;

  const listening = createIdentifyServer({ allowedHosts });
  listening.once("error", (error) => {
    log("error", "could not listen", { host, port, error: error.message });
    void closeDatabase().finally(() => process.exit(1));
  });
  listening.listen(port, host, () => {
    server = listening;
    const database = config.DATABASE_URL
      ? "PostgreSQL (DATABASE_URL)"
      : `PGlite (${config.PGLITE_DIR})`;
    const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
    const { port: actual } = listening.address() as AddressInfo;
    log("info", "listening", {
      url: `http://${shown.includes(":") ? `[${shown}]` : shown}:${actual}`,
      host,
      allowedHosts,
      database,
    });
  });
}

main().catch(async (error: unknown) => {
  // describeError, never error.message: a failed query's message quotes its bound values.
  log("error", "could not start", { error: describeError(error) });
  // Release the embedded database's lock if it was taken, so that a fixed start can follow.
  await closeDatabase().catch(() => {});
  process.exit(1);
});
