/**
 * The embedded database behind `npm start` with no DATABASE_URL: PGlite (PostgreSQL compiled
 * to WebAssembly) in a local folder. Never part of the deployed function: the build replaces
 * this module (scripts/build-function.ts), since its data would vanish with the instance.
 */
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { lock } from "proper-lockfile";
import { log } from "../log.js";
import type { DriverConnection } from "./database.js";
import { DatabaseUnavailableError } from "./errors.js";
import * as schema from "./schema.js";

/** Opens the embedded database in `dataDir` (`memory://` keeps nothing), locked to this process. */
export async function openPglite(dataDir: string, lockWaitMs: number): Promise<DriverConnection> {
  const unlock = dataDir.startsWith("memory://")
    ? async () => {}
    : await lockDataDir(dataDir, lockWaitMs);
  let client: PGlite;
  try {
    client = await PGlite.create(dataDir);
  } catch (error) {
    await unlock();
    throw error;
  }
  return {
    db: drizzle({ client, schema }),
    async close() {
      await client.close();
      await unlock();
    },
  };
}

/**
 * PGlite is a single-process database: two processes writing one folder corrupt it. A lock
 * file beside the folder makes other processes wait their turn, up to `waitMs`, then fail
 * with a clear 503.
 */
async function lockDataDir(dataDir: string, waitMs: number): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const intervalMs = 250;
  try {
    return await lock(dataDir, {
      realpath: false,
      // A process killed while holding the lock stops refreshing it; it is stale after this.
      stale: 10_000,
      retries: { retries: Math.ceil(waitMs / intervalMs), factor: 1, minTimeout: intervalMs },
      onCompromised: (error) =>
        log("error", "lost the embedded database lock", { dataDir, error: error.message }),
    });
  } catch (error) {
    if ((error as { code?: string }).code !== "ELOCKED") throw error;
    throw new DatabaseUnavailableError(
      `The embedded database in ${dataDir} is in use by another process; stop it or set PGLITE_DIR to another folder`,
      { cause: error },
    );
  }
}
