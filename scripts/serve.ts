/**
 * `npm start`: validates the configuration, applies pending migrations, has PostgreSQL check
 * the junk patterns, then serves the function on HOST:PORT (default 127.0.0.1:3000: only this
 * machine, since the service returns personal data; set HOST=0.0.0.0 to serve other
 * machines, e.g. inside a container) against DATABASE_URL, or the embedded database when it
 * is unset. Any refusal stops start-up with one log line naming the setting.
 */
import type { AddressInfo } from "node:net";
import { getConfig, readServerConfig } from "../lib/config.js";
import { closeDatabase, getConnection } from "../lib/db/client.js";
import { checkJunkPatternsOnce, getGuardrails } from "../lib/guardrails.js";
import { log } from "../lib/log.js";
import { loadDotEnv } from "./env.js";
import { createIdentifyServer } from "./server.js";

loadDotEnv();

async function main() {
  const config = getConfig();
  const { PORT: port, HOST: host } = readServerConfig();
  getGuardrails();
  const connection = await getConnection();
  await connection.migrate();
  // Before listening, so that a pattern PostgreSQL refuses stops start-up; the handler's own
  // call then finds them checked.
  await checkJunkPatternsOnce(connection.db);

  const server = createIdentifyServer();
  server.once("error", (error) => {
    log("error", "could not listen", { host, port, error: error.message });
    process.exit(1);
  });
  server.listen(port, host, () => {
    const database = config.DATABASE_URL
      ? "PostgreSQL (DATABASE_URL)"
      : `PGlite (${config.PGLITE_DIR})`;
    const shown = host === "0.0.0.0" || host === "::" ? "localhost" : host;
    const { port: actual } = server.address() as AddressInfo;
    log("info", "listening", {
      url: `http://${shown.includes(":") ? `[${shown}]` : shown}:${actual}`,
      host,
      database,
    });
  });

  const shutdown = () => {
    server.close();
    server.closeIdleConnections();
    void closeDatabase().finally(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

main().catch(async (error: unknown) => {
  log("error", "could not start", {
    error: error instanceof Error ? error.message : String(error),
  });
  // Release the embedded database's lock if it was taken, so that a fixed start can follow.
  await closeDatabase().catch(() => {});
  process.exit(1);
});
