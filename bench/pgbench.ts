/**
 * What the benches that time a SQL function alone share (bench:function, ab-function.ts,
 * feed-cost.ts): pgbench, one client, prepared statements, and the mean time per call that
 * pg_stat_user_functions reports (the bench sets track_functions on its databases).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { queryRows } from "../lib/db/query.js";
import type { BenchDatabase } from "./database.js";

/** The options the service sends (lib/identify.ts), with the default cap and a deadline. */
export const SERVICE_OPTIONS = `'{"requestId":"bench","lockTimeoutMs":5000,"deadlineMs":10000,"maxContacts":1000}'`;

/** Points pgbench (libpq's PG* variables) at the server of `adminUrl`. */
export function pgbenchServer(adminUrl: string): void {
  const { hostname, port, username } = new URL(adminUrl);
  Object.assign(process.env, { PGHOST: hostname, PGPORT: port || "5432", PGUSER: username });
}

/**
 * bench:function's pgbench scripts, given how a call is spelled: a random stored contact's
 * values (from bench_samples, see createSamples), or new ones.
 */
export function functionWorkloads(
  call: (email: string, phone: string) => string,
): Record<string, string> {
  return {
    "lookup, both values": `\\set i random(1, 500)\nselect email as e, phone_number as p from bench_samples where i = :i \\gset\n${call(":e", ":p")}\n`,
    "lookup, email only": `\\set i random(1, 500)\nselect email as e from bench_samples where i = :i \\gset\n${call(":e", "null")}\n`,
    "new contact": `\\set n random(1, 1000000000)\n${call("'new' || :n || '@x.io'", "(3000000000 + :n)::text")}\n`,
  };
}

/** 500 stored contacts with both values, numbered 1–500, for the lookup scripts. */
export async function createSamples(database: BenchDatabase): Promise<void> {
  await database.connection.db.execute(sql`
    create table bench_samples as
      select row_number() over () as i, email, phone_number from (
        select email, phone_number from contacts
         where email is not null and phone_number is not null order by id limit 500) s`);
}

/** Mean µs per call of the function `functionName` over one pgbench run of `script`. */
export async function microsPerCall(
  database: BenchDatabase,
  functionName: string,
  script: string,
  seconds: string,
): Promise<number> {
  const { db } = database.connection;
  await db.execute(sql`select pg_stat_reset()`);
  const dir = mkdtempSync(join(tmpdir(), "identify-pgbench-"));
  try {
    writeFileSync(join(dir, "script.pgb"), script);
    execFileSync(
      "pgbench",
      ["-n", "-M", "prepared", "-c", "1", "-T", seconds, "-f", join(dir, "script.pgb")],
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
         where funcname = ${functionName}`,
  );
  return row?.us ?? Number.NaN;
}

/** The median (the mean of the two middle values for an even count; 0 for none). */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
