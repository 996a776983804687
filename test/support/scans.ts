/** Counting how a piece of work read the contacts table, to prove it used indexes only. */
import { sql } from "drizzle-orm";
import type { Database } from "../../lib/db/client.js";
import { queryRows } from "../../lib/db/query.js";

/** The transaction `work` runs in: what it may run statements on. */
type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

/**
 * How many sequential scans of contacts `work` made, run in a transaction of its own. The
 * counter is read before and after inside that transaction: pg_stat_xact_user_tables also
 * holds the session's earlier counts that are not yet flushed, but nothing is flushed while
 * a transaction runs.
 */
export async function sequentialScansOf(
  db: Database,
  work: (tx: Transaction) => Promise<unknown>,
): Promise<number> {
  return db.transaction(async (tx) => {
    const count = async () =>
      (
        await queryRows<{ n: number }>(
          tx,
          sql`select seq_scan::int as n from pg_stat_xact_user_tables where relname = 'contacts'`,
        )
      )[0]?.n ?? 0;
    const before = await count();
    await work(tx);
    return (await count()) - before;
  });
}
