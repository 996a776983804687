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
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { queryRows } from "../lib/db/query.js";
import { createBenchDatabase } from "./database.js";
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
const { hostname, port, username } = new URL(adminUrl);
Object.assign(process.env, { PGHOST: hostname, PGPORT: port || "5432", PGUSER: username });

const OPTIONS = `'{"requestId":"bench","lockTimeoutMs":5000,"deadlineMs":10000,"maxContacts":1000}'`;
const FUNCTIONS = { now: "identify_contact", before: "identify_contact_before" } as const;
type Side = keyof typeof FUNCTIONS;
const call = (side: Side, email: string, phone: string) =>
  `select * from ${FUNCTIONS[side]}(${email}, ${phone}, ${OPTIONS});`;
/** bench:function's pgbench scripts. */
const WORKLOADS: Record<string, (side: Side) => string> = {
  "lookup, both values": (side) =>
    `\\set i random(1, 500)\nselect email as e, phone_number as p from bench_samples where i = :i \\gset\n${call(side, ":e", ":p")}\n`,
  "lookup, email only": (side) =>
    `\\set i random(1, 500)\nselect email as e from bench_samples where i = :i \\gset\n${call(side, ":e", "null")}\n`,
  "new contact": (side) =>
    `\\set n random(1, 1000000000)\n${call(side, "'new' || :n || '@x.io'", "(3000000000 + :n)::text")}\n`,
};

const database = await createBenchDatabase(adminUrl, "ours");
const { db } = database.connection;

/** Mean µs per call of `side`'s function over one pgbench run of `script`. */
async function measure(side: Side, script: string): Promise<number> {
  await db.execute(sql`select pg_stat_reset()`);
  const dir = mkdtempSync(join(tmpdir(), "identify-ab-"));
  try {
    writeFileSync(join(dir, "s.pgb"), script);
    execFileSync(
      "pgbench",
      ["-n", "-M", "prepared", "-c", "1", "-T", values.seconds, "-f", join(dir, "s.pgb")],
      { env: { ...process.env, PGDATABASE: database.name }, stdio: "ignore" },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Backends report their function counters when they go idle, at most once a second.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const [row] = await queryRows<{ us: number }>(
    db,
    sql`select (total_time / calls * 1000)::float8 as us from pg_stat_user_functions
         where funcname = ${FUNCTIONS[side]}`,
  );
  return row?.us ?? Number.NaN;
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};
const fixed = (xs: number[]) => xs.map((x) => x.toFixed(1)).join("  ");

try {
  await database.connection.migrate();
  await db.execute(sql.raw(earlier));
  await preloadCustomers(db, 10_000, true);
  await db.execute(sql`
    create table bench_samples as
      select row_number() over () as i, email, phone_number from (
        select email, phone_number from contacts
         where email is not null and phone_number is not null order by id limit 500) s`);
  console.log(`identify_contact now vs at ${values.before}, µs/call per round`);
  for (const [name, script] of Object.entries(WORKLOADS)) {
    const results: Record<Side, number[]> = { now: [], before: [] };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const side of round % 2 ? (["before", "now"] as const) : (["now", "before"] as const)) {
        results[side].push(await measure(side, script(side)));
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
