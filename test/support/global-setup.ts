/**
 * Runs once per `vitest run`, before any test file: builds the migrated databases that
 * the files copy instead of creating and migrating their own (see test/support/databases.ts),
 * deletes copies that stopped runs left behind, and drops the PostgreSQL template when the
 * run ends.
 */
import type { TestProject } from "vitest/node";
import {
  buildPgliteTemplate,
  buildPostgresTemplate,
  probePostgres,
  removeStaleScratchFolders,
} from "./databases.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One after the other: opening PGlite holds the event loop for seconds, long enough for
  // the PostgreSQL driver's query timeout to fire on a migration waiting beside it.
  const postgresTemplate = (await probePostgres()) ? await buildPostgresTemplate() : null;
  const pgliteTemplate = await buildPgliteTemplate();
  await removeStaleScratchFolders();
  project.provide("pgliteTemplate", pgliteTemplate);
  project.provide("postgresTemplate", postgresTemplate?.name ?? null);
  return async () => {
    await postgresTemplate?.drop();
  };
}
