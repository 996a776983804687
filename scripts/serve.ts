/**
 * `npm start`: applies pending migrations, then serves the function on HOST:PORT (default
 * 127.0.0.1:3000: only this machine, since the service returns personal data; set
 * HOST=0.0.0.0 to serve other machines, e.g. inside a container)
 * against DATABASE_URL, or the embedded database when it is unset.
 */
import { getConfig } from "../lib/config.js";
import { closeDatabase, getConnection } from "../lib/db/client.js";
import { log } from "../lib/log.js";
import { loadDotEnv } from "./env.js";
import { createIdentifyServer } from "./server.js";

loadDotEnv();

async function main() {
  const config = getConfig();
  await (await getConnection()).migrate();

  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST?.trim() || "127.0.0.1";
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
    log("info", "listening", {
      url: `http://${shown.includes(":") ? `[${shown}]` : shown}:${port}`,
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

main().catch((error: unknown) => {
  log("error", "could not start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
});
