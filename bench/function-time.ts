/**
 * `npm run bench:function`: the database time of one call of each implementation's
 * function, with nothing else in the way (no Node, no HTTP): pgbench, one client, prepared
 * statements, against identify_contact and minimal_identify on their own fresh databases
 * of 10,000 analyzed contacts, alternating run by run. Reads the mean time per call from
 * pg_stat_user_functions, as the main bench does. pgbench ships with PostgreSQL's client.
 *
 *   npm run bench:function -- [--seconds 4] [--rounds 3]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { queryRows } from "../lib/db/query.js";
import { type BenchDatabase, createBenchDatabase } from "./database.js";
import { preloadCustomers } from "./preload.js";
import type { Implementation } from "./server.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** The options the service sends (lib/identify.ts), with the default cap and a deadline. */
const OPTIONS = `'{"requestId":"bench","lockTimeoutMs":5000,"deadlineMs":10000,"maxContacts":1000}'`;
const call: Record<Implementation, (email: string, phone: string) => string> = {
  ours: (email, phone) => `select * from identify_contact(${email}, ${phone}, ${OPTIONS});`,
  minimal: (email, phone) => `select * from minimal_identify(${email}, ${phone});`,
};

/** pgbench scripts: a random stored contact's values, or new ones. */
const WORKLOADS: Record<string, (impl: Implementation) => string> = {
  "lookup, both values": (impl) =>
    `\\set i random(1, 500)\nselect email as e, phone_number as p from bench_samples where i = :i \\gset\n${call[impl](":e", ":p")}\n`,
  "lookup, email only": (impl) =>
    `\\set i random(1, 500)\nselect email as e from bench_samples where i = :i \\gset\n${call[impl](":e", "null")}\n`,
  "new contact": (impl) =>
    `\\set n random(1, 1000000000)\n${call[impl]("'new' || :n || '@x.io'", "(3000000000 + :n)::text")}\n`,
};

const FUNCTION: Record<Implementation, string> = {
  ours: "identify_contact",
  minimal: "minimal_identify",
};

async function prepare(impl: Implementation): Promise<BenchDatabase> {
  const database = await createBenchDatabase(adminUrl, impl);
  if (impl === "ours") await database.connection.migrate();
  await preloadCustomers(database.connection.db, 10_000, true);
  await database.connection.db.execute(sql`
    create table bench_samples as
      select row_number() over () as i, email, phone_number from (
        select email, phone_number from contacts
         where email is not null and phone_number is not null order by id limit 500) s`);
  return database;
}

/** Mean µs per call of `impl`'s function over one pgbench run of `script`. */
async function measure(database: BenchDatabase, impl: Implementation, script: string) {
  const { db } = database.connection;
  await db.execute(sql`select pg_stat_reset()`);
  const dir = mkdtempSync(join(tmpdir(), "identify-pgbench-"));
  try {
    writeFileSync(join(dir, "script.pgb"), script);
    execFileSync(
      "pgbench",
      ["-n", "-M", "prepared", "-c", "1", "-T", values.seconds, "-f", join(dir, "script.pgb")],
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
         where funcname = ${FUNCTION[impl]}`,
  );
  return row?.us ?? Number.NaN;
}

const { hostname, port, username } = new URL(adminUrl);
Object.assign(process.env, { PGHOST: hostname, PGPORT: port || "5432", PGUSER: username });

const databases = { ours: await prepare("ours"), minimal: await prepare("minimal") };
try {
  console.log("workload             ours µs/call  minimal µs/call  ratio");
  for (const [name, script] of Object.entries(WORKLOADS)) {
    for (let round = 0; round < Number(values.rounds); round++) {
      const ours = await measure(databases.ours, "ours", script("ours"));
      const minimal = await measure(databases.minimal, "minimal", script("minimal"));
      console.log(
        `${name.padEnd(20)} ${ours.toFixed(1).padStart(13)} ${minimal.toFixed(1).padStart(16)}  ${(ours / minimal).toFixed(2)}x`,
      );
    }
  }
} finally {
  await databases.ours.drop();
  await databases.minimal.drop();
}
