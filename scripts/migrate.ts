/**
 * `npm run db:migrate`: applies pending migrations from drizzle/ to DATABASE_URL, or to the
 * embedded database when it is unset. Safe to run twice, and from several processes at once.
 */
import { getConfig } from "../lib/config.js";
import { closeDatabase, getConnection } from "../lib/db/client.js";

const target = getConfig().DATABASE_URL ? "DATABASE_URL" : `PGlite (${getConfig().PGLITE_DIR})`;
try {
  const connection = await getConnection();
  await connection.migrate();
  console.log(`Migrations applied to ${target}.`);
} catch (error) {
  console.error(
    `Migrations failed on ${target}: ${error instanceof Error ? error.message : error}`,
  );
  process.exitCode = 1;
} finally {
  await closeDatabase();
}
