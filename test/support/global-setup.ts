/**
 * Runs once per `vitest run`, before any test file: builds the migrated databases that
 * the files copy instead of creating and migrating their own (see test/support/databases.ts)
 * and the function's bundle (test/support/built-function.ts), deletes copies that stopped
 * runs left behind, and drops the PostgreSQL template and the bundle when the run ends.
 */
import type { TestProject } from "vitest/node";
import { buildFunctionOnce } from "./built-function.js";
import {
  buildPgliteTemplate,
  buildPostgresTemplate,
  probePostgres,
  removeStaleScratchFolders,
} from "./databases.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // esbuild bundles in a process of its own, beside the migrations.
  const building = buildFunctionOnce();
  let postgresTemplate: Awaited<ReturnType<typeof buildPostgresTemplate>> | null;
  let pgliteTemplate: string;
  try {
    // One after the other: opening PGlite holds the event loop for seconds, long enough for
    // the PostgreSQL driver's query timeout to fire on a migration waiting beside it.
    postgresTemplate = (await probePostgres()) ? await buildPostgresTemplate() : null;
    pgliteTemplate = await buildPgliteTemplate();
  } catch (error) {
    await building.then((built) => built.remove()).catch(() => {});
    throw error;
  }
  const built = await building;
  await removeStaleScratchFolders();
  project.provide("pgliteTemplate", pgliteTemplate);
  project.provide("postgresTemplate", postgresTemplate?.name ?? null);
  project.provide("builtFunction", built.dir);
  return async () => {
    await postgresTemplate?.drop();
    await built.remove();
  };
}
