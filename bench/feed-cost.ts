/**
 * What the change feed costs POST /identify's writes, measured directly: the database time
 * of identify_contact creating new contacts, on one database of 10,000 analyzed contacts,
 * with the feed's write-side additions (the identity_events.transaction_id default
 * txid_current() and the identity_events_feed_idx entry per event) and without them (a
 * constant default, no index), alternating round by round, so that machine noise falls on
 * both. Lookups write nothing and are not measured. pgbench, one client, prepared statements,
 * pg_stat_user_functions mean time per call, as bench:function.
 *
 *   npx tsx bench/feed-cost.ts [--rounds 6] [--seconds 4]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { createBenchDatabase } from "./database.js";
import { median, microsPerCall, pgbenchServer, SERVICE_OPTIONS } from "./pgbench.js";
import { preloadCustomers } from "./preload.js";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "6" }, seconds: { type: "string", default: "4" } },
});
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
pgbenchServer(adminUrl);
const database = await createBenchDatabase(adminUrl, "ours");
const { db } = database.connection;
await database.connection.migrate();
await preloadCustomers(db, 10_000, true);
const script = `\\set n random(1, 1000000000)\nselect * from identify_contact('new' || :n || '@x.io', (3000000000 + :n)::text, ${SERVICE_OPTIONS});\n`;
/** The statements that put the database in each state; "feed" is what the migrations make. */
const states = {
  feed: [
    sql`alter table identity_events alter column transaction_id set default txid_current()`,
    sql`create index if not exists identity_events_feed_idx on identity_events (transaction_id, id)`,
  ],
  without: [
    sql`alter table identity_events alter column transaction_id set default 0`,
    sql`drop index if exists identity_events_feed_idx`,
  ],
};
const results: Record<string, number[]> = { feed: [], without: [] };
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const state of round % 2
      ? (["without", "feed"] as const)
      : (["feed", "without"] as const)) {
      for (const statement of states[state]) await db.execute(statement);
      results[state]?.push(
        await microsPerCall(database, "identify_contact", script, values.seconds),
      );
    }
  }
} finally {
  await database.drop();
}
console.log("new contact, µs/call per round");
for (const [state, xs] of Object.entries(results)) {
  console.log(
    `${state.padEnd(8)} ${xs.map((x) => x.toFixed(1)).join("  ")}   median ${median(xs).toFixed(1)}`,
  );
}
const paired = (results.feed ?? []).map((x, i) => x - (results.without?.[i] ?? 0));
console.log(
  `feed − without, per round: ${paired.map((x) => x.toFixed(1)).join("  ")}   median ${median(paired).toFixed(1)}`,
);
