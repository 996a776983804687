/**
 * The one query helper every query module uses: run a raw statement through Drizzle and get
 * its rows, whichever driver is underneath (they disagree on the result's shape).
 */
import type { SQL } from "drizzle-orm";
import type { Database } from "./database.js";

/** Anything that runs statements: the database, or a transaction inside it. */
export type Executor = Pick<Database, "execute">;

/** Runs a raw statement and returns its rows. */
export async function queryRows<Row>(db: Executor, statement: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(statement);
  const rows = (result as { rows?: unknown }).rows;
  if (!Array.isArray(rows)) throw new Error("The database driver returned no rows array");
  return rows as Row[];
}
