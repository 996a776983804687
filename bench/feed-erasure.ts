/**
 * What a change-feed page costs inside an erasure, by the erasure's size: pages of 10 read
 * from random places inside erasures of 400, 40,000 and 200,000 contacts, the database time
 * of identify_changes per page (pgbench, one client, prepared statements,
 * pg_stat_user_functions, as the other function benches). A page's work should not grow with
 * the erasure (drizzle/functions/identify_changes.sql, "Bounded work"): the goal is pages
 * inside 40,000 within 2x of pages inside 400. Rounds alternate the sizes, so machine noise
 * falls on all of them. Databases of its own, dropped at the end; about
 * rounds x sizes x seconds of pgbench, 30 s by default.
 *
 *   npx tsx bench/feed-erasure.ts [--rounds 3] [--seconds 3]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { queryRows } from "../lib/db/query.js";
import { type BenchDatabase, openBenchConnection, withDatabase } from "./database.js";
import { median, microsPerCall, pgbenchServer } from "./pgbench.js";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "3" }, seconds: { type: "string", default: "3" } },
});
const SIZES = [400, 40_000, 200_000];
const PAGE = 10;
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
pgbenchServer(adminUrl);

const PREFIX = "identify_bench_feed_erasure";
const admin = await openBenchConnection(adminUrl);
const names = [PREFIX, ...SIZES.map((size) => `${PREFIX}_${size}`)];
const dropAll = async () => {
  for (const name of names) {
    await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
  }
};

/** A copy of the migrated database holding one erasure of `size` contacts, and no other. */
async function erasureDatabase(size: number) {
  const name = `${PREFIX}_${size}`;
  await admin.db.execute(sql.raw(`create database ${name} template ${PREFIX}`));
  await admin.db.execute(sql.raw(`alter database ${name} set track_functions = 'pl'`));
  const url = withDatabase(adminUrl, name);
  const connection = await openBenchConnection(url);
  // The ids need no contacts, which an erasure has deleted.
  const [row] = await queryRows<{ transaction_id: string; id: string }>(
    connection.db,
    sql`insert into erasures (request_id, contact_ids, contact_count, event_count)
        select 'bench', array_agg(n order by n), ${size}::integer, 0
          from generate_series(1, ${size}::integer) n
        returning transaction_id::text, id::text`,
  );
  if (!row) throw new Error("the erasure was not written");
  const database: BenchDatabase = {
    name,
    url,
    connection,
    functionTime: () => Promise.reject(new Error("unused: microsPerCall reads the statistics")),
    drop: () => connection.close(),
  };
  // A page of 10 from a random place inside it: after its first k contacts.
  const script =
    `\\set k random(0, ${size - PAGE})\n` +
    `select count(*) from identify_changes(${row.transaction_id}, 9223372036854775807, ` +
    `${row.id}, :k, ${PAGE});\n`;
  return { size, database, script };
}

const results = new Map<number, number[]>(SIZES.map((size) => [size, []]));
const databases: Awaited<ReturnType<typeof erasureDatabase>>[] = [];
try {
  // Each size in a database of its own, so that no page reads past its erasure into a larger
  // one: a copy of one migrated database.
  await dropAll();
  await admin.db.execute(sql.raw(`create database ${PREFIX}`));
  const base = await openBenchConnection(withDatabase(adminUrl, PREFIX));
  await base.migrate();
  await base.close();
  for (const size of SIZES) databases.push(await erasureDatabase(size));
  for (let round = 0; round < Number(values.rounds); round++) {
    const order = round % 2 ? [...databases].reverse() : databases;
    for (const { size, database, script } of order) {
      results
        .get(size)
        ?.push(await microsPerCall(database, "identify_changes", script, values.seconds));
    }
  }
} finally {
  for (const { database } of databases) await database.drop().catch(() => {});
  await dropAll();
  await admin.close();
}

console.log(`identify_changes, a page of ${PAGE} inside an erasure, µs/page per round`);
const smallest = median(results.get(SIZES[0] ?? 0) ?? []);
for (const [size, xs] of results) {
  const middle = median(xs);
  console.log(
    `${String(size).padStart(7)} contacts  ${xs.map((x) => x.toFixed(1)).join("  ")}   median ${middle.toFixed(1)}  (${(middle / smallest).toFixed(2)}x the ${SIZES[0]})`,
  );
}
