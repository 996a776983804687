/**
 * What the erased-values list costs (docs/privacy.md#the-erased-values-list): an erasure
 * hashes every value it takes, in the trigger on its delete, and an import hashes every
 * source row's email and phone to look them up. Prints, on PostgreSQL:
 *
 * - an erasure of a customer of CONTACTS contacts, with the trigger and with it disabled;
 * - an import of SOURCE_ROWS rows into an empty database, with no list (no key yet) and with
 *   a list of ERASED_VALUES values, each none of the source's.
 *
 *   npx tsx bench/erased-values.ts   (BENCH_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Each database is created here and dropped afterwards; the whole run takes about a minute.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../lib/db/client.js";
import { forgetCustomer } from "../lib/forget.js";
import { importFromLegacy } from "../lib/import.js";
import { openBenchConnection, withDatabase } from "./database.js";

const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const CONTACTS = 5_000;
const SOURCE_ROWS = 20_000;
const ERASED_VALUES = 5_000;
const RUNS = 3;

/** Runs `work` on a migrated database of its own, dropped afterwards. */
async function onFreshDatabase<T>(name: string, work: (db: Database) => Promise<T>): Promise<T> {
  const admin = await openBenchConnection(ADMIN_URL);
  await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
  await admin.db.execute(sql.raw(`create database ${name}`));
  const connection = await openBenchConnection(withDatabase(ADMIN_URL, name));
  try {
    await connection.migrate();
    return await work(connection.db);
  } finally {
    await connection.close();
    await admin.db.execute(sql.raw(`drop database if exists ${name} with (force)`));
    await admin.close();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** One customer: a primary and CONTACTS - 1 secondaries, each with values of its own. */
async function plantCustomer(db: Database): Promise<void> {
  await db.execute(sql`truncate contacts, identity_events restart identity`);
  await db.execute(sql`insert into contacts (email, phone_number, link_precedence, created_at)
    values ('p0@bench.example', '+15550000000', 'primary', now() - interval '1 day')`);
  await db.execute(sql`insert into contacts (email, phone_number, linked_id, link_precedence)
    select 'p' || i || '@bench.example', '+1555' || lpad(i::text, 7, '0'), 1, 'secondary'
      from generate_series(1, ${CONTACTS - 1}) i`);
  await db.execute(sql`analyze contacts`);
}

/** The conditions are interleaved run by run, so that a machine's drift falls on both. */
async function erasures(db: Database): Promise<Record<string, number>> {
  const times: Record<string, number[]> = { "trigger enabled": [], "trigger disabled": [] };
  for (let run = 0; run < RUNS; run++) {
    for (const trigger of ["enable", "disable"] as const) {
      await db.execute(sql.raw(`alter table contacts ${trigger} trigger contacts_erased_values`));
      await plantCustomer(db);
      const erase = () =>
        forgetCustomer(db, { id: 1 }, { requestId: `BENCH-${run}`, overCap: true });
      times[`trigger ${trigger}d`]?.push(await timed(erase));
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, all]) => [name, median(all)]));
}

async function fillSource(db: Database): Promise<void> {
  await db.execute(sql`create table contact (
    id int primary key, phonenumber varchar, email varchar, linkedid int, linkprecedence varchar,
    createdat timestamp not null, updatedat timestamp not null, deletedat timestamp)`);
  await db.execute(sql`insert into contact (id, phonenumber, email, linkprecedence, createdat, updatedat)
    select i, '+4479' || lpad(i::text, 8, '0'), 'person' || i || '@example.com', 'primary',
           timestamp '2023-01-01' + i * interval '1 second', timestamp '2023-01-01' + i * interval '1 second'
      from generate_series(1, ${SOURCE_ROWS}) i`);
}

/** ERASED_VALUES values on the list, none of the source's: an erasure of planted contacts. */
async function eraseOthers(db: Database): Promise<void> {
  await db.execute(sql`insert into contacts (email, link_precedence)
    select 'erased' || i || '@bench.example', 'primary' from generate_series(1, ${ERASED_VALUES}) i`);
  await db.execute(sql`with gone as (select array_agg(id order by id) as ids from contacts)
    insert into erasures (request_id, contact_ids, contact_count, event_count)
    select 'BENCH-1', ids, cardinality(ids), 0 from gone`);
  await db.execute(sql`delete from contacts`);
}

async function imports(source: Database): Promise<Record<string, number>> {
  const withList = `${ERASED_VALUES} erased values`;
  const times: Record<string, number[]> = { "no list": [], [withList]: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const list of ["no list", withList]) {
      const time = await onFreshDatabase("identify_bench_erased_target", async (target) => {
        if (list === withList) await eraseOthers(target);
        return timed(() => importFromLegacy(target, source));
      });
      times[list]?.push(time);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, all]) => [name, median(all)]));
}

const erasure = await onFreshDatabase("identify_bench_erased_forget", erasures);
const imported = await onFreshDatabase("identify_bench_erased_source", async (source) => {
  await fillSource(source);
  return imports(source);
});
const ms = (value: number | undefined) => `${Math.round(value ?? 0)} ms`;
console.log(`Erasure of a ${CONTACTS}-contact customer, median of ${RUNS}:`);
for (const [name, value] of Object.entries(erasure))
  console.log(`  ${name.padEnd(24)} ${ms(value)}`);
console.log(`Import of ${SOURCE_ROWS} rows into an empty database, median of ${RUNS}:`);
for (const [name, value] of Object.entries(imported))
  console.log(`  ${name.padEnd(24)} ${ms(value)}`);
