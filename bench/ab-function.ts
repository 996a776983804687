/**
 * identify_contact now against identify_contact as an earlier commit had it, on one database
 * of 10,000 analyzed contacts, alternating round by round so that machine noise falls on
 * both: the earlier text (`git show <commit>:drizzle/functions/identify_contact.sql`) is
 * installed beside the current one as identify_contact_before. Valid while the functions the
 * earlier text calls still take the arguments it passes (identify_customer_contacts,
 * identify_settle, the junk helpers). The workloads and options are bench:function's;
 * pgbench, one client, prepared statements, pg_stat_user_functions mean time per call.
 *
 *   npx tsx bench/ab-function.ts --before <commit> [--rounds 6] [--seconds 4]
 */
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { createBenchDatabase } from "./database.js";
import {
  createSamples,
  functionWorkloads,
  median,
  microsPerCall,
  pgbenchServer,
  SERVICE_OPTIONS,
} from "./pgbench.js";
import { preloadCustomers } from "./preload.js";

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "4" },
  },
});
if (!values.before) {
  console.error("usage: npx tsx bench/ab-function.ts --before <commit> [--rounds 6] [--seconds 4]");
  process.exit(2);
}
const earlier = execFileSync(
  "git",
  ["show", `${values.before}:drizzle/functions/identify_contact.sql`],
  {
    encoding: "utf8",
  },
).replace(/FUNCTION identify_contact\(/, "FUNCTION identify_contact_before(");

const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
pgbenchServer(adminUrl);

const FUNCTIONS = { now: "identify_contact", before: "identify_contact_before" } as const;
type Side = keyof typeof FUNCTIONS;
/** bench:function's pgbench scripts, for each side. */
const WORKLOADS: Record<Side, Record<string, string>> = {
  now: functionWorkloads(
    (e, p) => `select * from ${FUNCTIONS.now}(${e}, ${p}, ${SERVICE_OPTIONS});`,
  ),
  before: functionWorkloads(
    (e, p) => `select * from ${FUNCTIONS.before}(${e}, ${p}, ${SERVICE_OPTIONS});`,
  ),
};

const database = await createBenchDatabase(adminUrl, "ours");
const { db } = database.connection;

const fixed = (xs: number[]) => xs.map((x) => x.toFixed(1)).join("  ");

try {
  await database.connection.migrate();
  await db.execute(sql.raw(earlier));
  await preloadCustomers(db, 10_000, true);
  await createSamples(database);
  console.log(`identify_contact now vs at ${values.before}, µs/call per round`);
  for (const name of Object.keys(WORKLOADS.now)) {
    const results: Record<Side, number[]> = { now: [], before: [] };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const side of round % 2 ? (["before", "now"] as const) : (["now", "before"] as const)) {
        results[side].push(
          await microsPerCall(
            database,
            FUNCTIONS[side],
            WORKLOADS[side][name] ?? "",
            values.seconds,
          ),
        );
      }
    }
    const paired = results.now.map((x, i) => x - (results.before[i] ?? 0));
    console.log(name);
    console.log(`  now     ${fixed(results.now)}   median ${median(results.now).toFixed(1)}`);
    console.log(`  before  ${fixed(results.before)}   median ${median(results.before).toFixed(1)}`);
    console.log(
      `  now − before, per round: ${fixed(paired)}   median ${median(paired).toFixed(1)}`,
    );
  }
} finally {
  await database.drop();
}
