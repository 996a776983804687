/**
 * Bounded work per request, on PostgreSQL: a customer far over the cap is refused after
 * reading about the cap's worth of rows, the statement stops at its deadline, and a lookup
 * costs the same at 1,000 and at 200,000 rows with no ANALYZE ever run. Work is counted, not
 * timed: rows and blocks the request read (this transaction's pg_stat_get_xact_* counters).
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Connection, Database } from "../lib/db/client.js";
import { sqlState } from "../lib/db/errors.js";
import { queryRows } from "../lib/db/query.js";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../lib/db/sql-contract.js";
import { identify } from "../lib/identify.js";
import { postgresBackend, resetContacts } from "./support/databases.js";

// One connection, so that the plans cached while the table is small are the ones measured
// once it is large, as on a long-lived pooled connection.
const backend = postgresBackend({ poolMax: 1 });

interface Work {
  /** Index and heap tuples the statement read from contacts and its indexes. */
  tuples: number;
  /** Buffer pages it touched there. */
  blocks: number;
}

const counters = sql`select coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0)::bigint as tuples,
                            coalesce(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0)::bigint as blocks
                       from pg_class c where c.relname like 'contacts%'`;

/** Runs identify_contact for an email, rolled back, and counts what it read. */
async function workOfLookup(db: Database, email: string, options: object): Promise<Work> {
  let work: Work = { tuples: 0, blocks: 0 };
  await db
    .transaction(async (tx) => {
      const [before] = await queryRows<{ tuples: string; blocks: string }>(tx, counters);
      // In a savepoint, so that a refusal leaves the transaction usable for the counters.
      await tx
        .transaction((savepoint) =>
          queryRows(
            savepoint,
            sql`select count(*) from identify_contact(${email}::text, null, ${JSON.stringify({ lockTimeoutMs: 5_000, ...options })}::jsonb)`,
          ),
        )
        .catch(() => undefined);
      const [after] = await queryRows<{ tuples: string; blocks: string }>(tx, counters);
      work = {
        tuples: Number(after?.tuples) - Number(before?.tuples),
        blocks: Number(after?.blocks) - Number(before?.blocks),
      };
      throw new Error("rollback");
    })
    .catch((error: unknown) => {
      if (!(error instanceof Error && /rollback/.test(error.message))) throw error;
    });
  return work;
}

/** Singleton customers u<from>..u<to>@x.io, inserted in bulk. */
const insertSingletons = (db: Database, from: number, to: number) =>
  db.execute(sql`insert into contacts (email, phone_number, link_precedence)
                 select 'u' || g || '@x.io', (2000000 + g)::text, 'primary'
                   from generate_series(${from}::integer, ${to}::integer) g`);

/** One customer of `size` contacts, a primary and its secondaries, inserted in bulk. */
const insertHugeCustomer = (db: Database, size: number) =>
  db.execute(sql`with p as (
                   insert into contacts (email, phone_number, link_precedence, created_at)
                   values ('big0@x.io', '1000000', 'primary', now() - interval '1 day')
                   returning id)
                 insert into contacts (email, phone_number, linked_id, link_precedence, created_at)
                 select 'big' || g || '@x.io', (1000000 + g)::text, p.id, 'secondary',
                        now() - interval '1 day' + g * interval '1 millisecond'
                   from p, generate_series(1, ${size - 1}::integer) g`);

/** Statements of this database still running, other than the one asking. */
async function othersRunning(db: Database): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    db,
    sql`select count(*)::integer as n from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'`,
  );
  return row?.n ?? 0;
}

describe.skipIf(!backend.available)("bounded work per request on postgres", () => {
  let connection: Connection;
  let db: Database;
  const lookup = (email: string, options: { maxContacts?: number; deadlineMs?: number }) =>
    identify(
      db,
      { email, phoneNumber: null },
      {
        lockTimeoutMs: 5_000,
        requestId: "bounded-test",
        ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
        guardrails: options.maxContacts === undefined ? {} : { maxContacts: options.maxContacts },
      },
    );

  beforeAll(async () => {
    connection = await backend.open();
    db = connection.db;
    // Whatever the server's settings, nothing analyzes the table behind the test's back.
    await db.execute(sql`alter table contacts set (autovacuum_enabled = false)`);
  });
  afterAll(() => backend.dispose());
  beforeEach(() => resetContacts(connection));

  it("refuses a 50,000-contact customer with IDC01 after reading about the cap's worth of rows", async () => {
    await insertHugeCustomer(db, 50_000);
    await insertSingletons(db, 1, 10);

    for (const email of ["big0@x.io", "big777@x.io", "big49999@x.io"]) {
      // IDC01: the handler answers 409 customer_too_large (lib/errors.ts).
      await expect(lookup(email, { maxContacts: 1_000 }).catch(sqlState)).resolves.toBe(
        SQLSTATE_CUSTOMER_TOO_LARGE,
      );
    }
    const work = await workOfLookup(db, "big777@x.io", { maxContacts: 1_000 });
    // Two contacts read per contact found (the index entry and the row), plus the values.
    expect(work.tuples).toBeGreaterThan(1_000);
    expect(work.tuples).toBeLessThan(5_000);

    // Other customers are served, nothing was written, nothing is left running or locked.
    const other = await lookup("u3@x.io", { maxContacts: 1_000 });
    expect(other.outcome).toBe("unchanged");
    const [count] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::integer as n from contacts`,
    );
    expect(count?.n).toBe(50_010);
    expect(await othersRunning(db)).toBe(0);
    const [locks] = await queryRows<{ n: number }>(
      db,
      sql`select count(*)::integer as n from pg_locks l join pg_database d on d.oid = l.database
           where l.locktype = 'advisory' and d.datname = current_database()`,
    );
    expect(locks?.n).toBe(0);
  });

  it("stops at its deadline with 57014 when the cap allows a customer that large", async () => {
    await insertHugeCustomer(db, 50_000);
    const error = await lookup("big777@x.io", { maxContacts: 100_000, deadlineMs: 1 }).catch(
      (caught: unknown) => caught,
    );
    expect(sqlState(error)).toBe("57014");
    expect(await othersRunning(db)).toBe(0);
  });

  it("reads as much at 200,000 rows as at 1,000 with no ANALYZE ever run", async () => {
    await insertSingletons(db, 1, 1_000);
    // Plans are made now, on the small table, and cached on the one connection.
    await lookup("u500@x.io", {});
    const small = await workOfLookup(db, "u500@x.io", {});
    await insertSingletons(db, 1_001, 200_000);
    const large = await workOfLookup(db, "u500@x.io", {});

    const [stats] = await queryRows<{ analyzed: boolean }>(
      db,
      sql`select (last_analyze is not null or last_autoanalyze is not null) as analyzed
            from pg_stat_user_tables where relname = 'contacts'`,
    );
    expect(stats?.analyzed).toBe(false);
    expect(small.tuples).toBeLessThan(30);
    expect(large.tuples).toBe(small.tuples);
    // Only the indexes' extra level: a few blocks per probe, never the table.
    expect(large.blocks).toBeLessThan(small.blocks * 2);
  });
});
