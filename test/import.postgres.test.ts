/**
 * The import from the service identify replaces, against real PostgreSQL databases: a
 * source table of exactly the old service's shape, filled with the states that service
 * leaves behind (chains, split customers, unnormalized and invalid values, duplicates,
 * deleted rows, dangling and self links), imported into a fresh identify database; the same
 * rows in the table Prisma would have made; and a run after an erasure, which must not
 * bring the erased person back.
 */
import { asc, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLegacyTable } from "../bench/legacy.js";
import type { Connection, Database } from "../lib/db/client.js";
import { checkInvariants } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import { type Contact, contacts, identityEvents } from "../lib/db/schema.js";
import { forgetCustomer } from "../lib/forget.js";
import { type ImportReport, importFromLegacy } from "../lib/import.js";
import { allContacts } from "./support/contacts.js";
import {
  connect,
  createPostgresDatabase,
  pgliteBackend,
  postgresAvailable,
  resetContacts,
  type TestDatabase,
} from "./support/databases.js";
import { databaseError, failureOf, INVALID_REGULAR_EXPRESSION } from "./support/errors.js";
import { runMain } from "./support/scripts.js";

const CONSISTENT = {
  primaryNotOldest: 0,
  secondaryNotOnLivePrimary: 0,
  identifierInTwoCustomers: 0,
  duplicateRows: 0,
};

/** A source row: id, phoneNumber, email, linkedId, linkPrecedence, createdAt, deletedAt. */
type LegacyRow = [
  number,
  string | null,
  string | null,
  number | null,
  string | null,
  string,
  string | null,
];

/** Minutes after 2023-04-01 00:00, as the old service's naive timestamps. */
const t = (minutes: number, micros = "000000") =>
  `2023-04-01 ${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}:00.${micros}`;

const LEGACY: LegacyRow[] = [
  // A chain: 2 was a primary until a request merged it under 1; its secondary 3 still points at it.
  [1, "111", "a@x.io", null, "primary", t(1, "123456"), null],
  [2, "222", "b@x.io", 1, "secondary", t(2), null],
  [3, "222", "c@x.io", 2, "secondary", t(3), null],
  // A split customer: two primaries sharing an email; 5 is the older despite its larger id.
  [4, "333", "split@x.io", null, "primary", t(6), null],
  [5, "444", "split@x.io", null, "primary", t(4), null],
  // Unnormalized values.
  [6, "555-0100", " Doc@X.IO ", null, "primary", t(7), null],
  // An invalid email (dropped, the phone is kept).
  [7, "777", "not-an-email", null, "primary", t(8), null],
  // Nothing valid left (skipped), and a secondary of that skipped row.
  [8, "abc", "bad@", null, "primary", t(9), null],
  [9, null, "nine@x.io", 8, "secondary", t(10), null],
  // Only whitespace: no identifier at all (skipped, nothing "dropped").
  [10, null, "   ", null, "primary", t(11), null],
  // 12 duplicates 11 once normalized (skipped); 13 pointed at 12 and is re-pointed to 11.
  [11, "999", "dup@x.io", null, "primary", t(12), null],
  [12, "999", " DUP@x.io", 11, "secondary", t(13), null],
  [13, "999", "dup2@x.io", 12, "secondary", t(14), null],
  // A deleted row sharing 1's phone: imported as deleted, never joins a customer.
  [14, "111", "gone@x.io", null, "primary", t(15), t(30)],
  // A link to a row that does not exist, a link to itself, and precedences that disagree.
  [15, "1515", "orphan@x.io", 999, "secondary", t(16), null],
  [16, null, "self@x.io", 16, "secondary", t(17), null],
  [17, "1717", "prim@x.io", 1, "primary", t(18), null],
  [18, null, "sec@x.io", null, "secondary", t(19), null],
];

const FIRST_RUN = {
  rowsRead: 18,
  imported: 15,
  alreadyPresent: 0,
  skippedErased: 0,
  skippedInvalid: 2, // 8 and 10
  skippedDuplicate: 1, // 12
  emailsDropped: 2, // 7 and 8
  phoneNumbersDropped: 1, // 8
  linksRepointed: 1, // 13
  linksReset: 5, // 9, 15, 16, 17, 18
  relinked: 2, // 3 (chain) and 4 (split)
} satisfies Omit<ImportReport, "requestId">;

const IMPORTED_IDS = [1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15, 16, 17, 18];

/** Creates a database whose sessions run in a time zone far from UTC. */
async function createDatabaseAwayFromUtc(options: { migrated: boolean }): Promise<TestDatabase> {
  const database = await createPostgresDatabase(options);
  const setup = await connect({ DATABASE_URL: database.url });
  const name = new URL(database.url).pathname.slice(1);
  await setup.db.execute(sql.raw(`alter database ${name} set timezone to 'Pacific/Auckland'`));
  await setup.close();
  return database;
}

async function fillLegacy(db: Database): Promise<void> {
  await createLegacyTable(db);
  for (const [id, phone, email, linkedId, precedence, createdAt, deletedAt] of LEGACY) {
    await db.execute(sql`insert into Contact
      (id, phoneNumber, email, linkedId, linkPrecedence, createdAt, updatedAt, deletedAt)
      values (${id}, ${phone}, ${email}, ${linkedId}, ${precedence}, ${createdAt}::timestamp,
              ${createdAt}::timestamp + interval '1 hour', ${deletedAt}::timestamp)`);
  }
}

/**
 * The same rows in the table `prisma migrate` makes for the usual schema.prisma of this
 * service: a quoted "Contact" with camelCase columns, an enum for the precedence, and
 * millisecond timestamps, `timestamp(3)` by default or `timestamptz(3)` with
 * `@db.Timestamptz(3)`.
 */
async function fillPrisma(
  db: Database,
  timestamps: "timestamp(3)" | "timestamptz(3)" = "timestamp(3)",
): Promise<void> {
  await db.execute(sql`create type "LinkPrecedence" as enum ('primary', 'secondary')`);
  await db.execute(
    sql.raw(`create table "Contact" (
    "id" serial not null,
    "phoneNumber" text,
    "email" text,
    "linkedId" integer,
    "linkPrecedence" "LinkPrecedence" not null,
    "createdAt" ${timestamps} not null default current_timestamp,
    "updatedAt" ${timestamps} not null,
    "deletedAt" ${timestamps},
    constraint "Contact_pkey" primary key ("id")
  )`),
  );
  // A naive UTC time, as the column stores it.
  const time = (value: string | null) =>
    timestamps === "timestamp(3)"
      ? sql`${value}::timestamp`
      : sql`${value}::timestamp at time zone 'UTC'`;
  for (const [id, phone, email, linkedId, precedence, createdAt, deletedAt] of LEGACY) {
    const updatedAt = createdAt.replace(/^2023-04-01 0/, "2023-04-01 1");
    await db.execute(sql`insert into "Contact"
      ("id", "phoneNumber", "email", "linkedId", "linkPrecedence", "createdAt", "updatedAt", "deletedAt")
      values (${id}, ${phone}, ${email}, ${linkedId}, ${precedence}::"LinkPrecedence",
              ${time(createdAt)}, ${time(updatedAt)}, ${time(deletedAt)})`);
  }
}

/** The naive UTC text of each timestamp, by id, as one side stores it. */
type Times = Map<number, { created: string; updated: string; deleted: string | null }>;
const FORMAT = "YYYY-MM-DD HH24:MI:SS.US";

async function sourceTimes(db: Database): Promise<Times> {
  const rows = await queryRows<{ id: number; created: string; updated: string; deleted: string }>(
    db,
    sql`select id, to_char(createdAt, ${FORMAT}) as created, to_char(updatedAt, ${FORMAT}) as updated,
               to_char(deletedAt, ${FORMAT}) as deleted from Contact`,
  );
  return new Map(rows.map((row) => [row.id, row]));
}

async function targetTimes(db: Database): Promise<Times> {
  const rows = await queryRows<{ id: number; created: string; updated: string; deleted: string }>(
    db,
    sql`select id, to_char(created_at at time zone 'UTC', ${FORMAT}) as created,
               to_char(updated_at at time zone 'UTC', ${FORMAT}) as updated,
               to_char(deleted_at at time zone 'UTC', ${FORMAT}) as deleted from contacts`,
  );
  return new Map(rows.map((row) => [row.id, row]));
}

const byId = (rows: Contact[], id: number) => rows.find((row) => row.id === id);

describe.skipIf(!postgresAvailable())("importing from the old service", () => {
  let sourceDatabase: TestDatabase;
  let targetDatabase: TestDatabase;
  let source: Connection;
  let target: Connection;
  let report: ImportReport;
  let afterFirstRun: Contact[];

  beforeAll(async () => {
    // The source holds only the old service's table; the target is a migrated identify.
    sourceDatabase = await createDatabaseAwayFromUtc({ migrated: false });
    targetDatabase = await createDatabaseAwayFromUtc({ migrated: true });
    source = await connect({ DATABASE_URL: sourceDatabase.url });
    target = await connect({ DATABASE_URL: targetDatabase.url });
    await fillLegacy(source.db);
    // Small batches, so that links and duplicates cross batch boundaries.
    report = await importFromLegacy(target.db, source.db, { batchSize: 4 });
    afterFirstRun = await allContacts(target.db);
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
    await sourceDatabase?.drop();
    await targetDatabase?.drop();
  });

  it("keeps the ids and the timestamps, read as UTC", async () => {
    expect(afterFirstRun.map((row) => row.id)).toEqual(IMPORTED_IDS);
    const before = await sourceTimes(source.db);
    const after = await targetTimes(target.db);
    const relinked = new Set([3, 4]); // settling stamps updated_at on the rows it changes
    for (const id of IMPORTED_IDS) {
      const { created, updated, deleted } = after.get(id) ?? {};
      expect(created).toBe(before.get(id)?.created);
      expect(deleted).toBe(before.get(id)?.deleted);
      if (!relinked.has(id)) expect(updated).toBe(before.get(id)?.updated);
    }
    expect(after.get(1)?.created).toBe("2023-04-01 00:01:00.123456");
  });

  it("moves the id sequence past the largest imported id", async () => {
    const [row] = await queryRows<{ last: number }>(
      target.db,
      sql`select pg_sequence_last_value(pg_get_serial_sequence('contacts', 'id')::regclass)::int as last`,
    );
    expect(row?.last).toBe(18);
  });

  it("normalizes emails and phone numbers and drops the invalid ones", () => {
    expect(byId(afterFirstRun, 6)).toMatchObject({ email: "doc@x.io", phoneNumber: "5550100" });
    expect(byId(afterFirstRun, 7)).toMatchObject({ email: null, phoneNumber: "777" });
    expect(byId(afterFirstRun, 8)).toBeUndefined();
    expect(byId(afterFirstRun, 10)).toBeUndefined();
  });

  it("heals a chain of secondaries so every secondary points at the primary", () => {
    expect(byId(afterFirstRun, 1)).toMatchObject({ linkPrecedence: "primary", linkedId: null });
    expect(byId(afterFirstRun, 2)).toMatchObject({ linkPrecedence: "secondary", linkedId: 1 });
    expect(byId(afterFirstRun, 3)).toMatchObject({ linkPrecedence: "secondary", linkedId: 1 });
  });

  it("merges a customer split into two primaries under the oldest one", () => {
    expect(byId(afterFirstRun, 5)).toMatchObject({ linkPrecedence: "primary", linkedId: null });
    expect(byId(afterFirstRun, 4)).toMatchObject({ linkPrecedence: "secondary", linkedId: 5 });
  });

  it("skips a duplicate and re-points what linked to it at the row kept", () => {
    expect(byId(afterFirstRun, 12)).toBeUndefined();
    expect(byId(afterFirstRun, 13)).toMatchObject({ linkPrecedence: "secondary", linkedId: 11 });
  });

  it("imports rows with an unusable link as primaries, and a deleted row as deleted", () => {
    for (const id of [9, 15, 16, 17, 18]) {
      expect(byId(afterFirstRun, id)).toMatchObject({ linkPrecedence: "primary", linkedId: null });
    }
    expect(byId(afterFirstRun, 14)?.deletedAt).toBeInstanceOf(Date);
    expect(byId(afterFirstRun, 14)).toMatchObject({ linkPrecedence: "primary", linkedId: null });
  });

  it("leaves the data satisfying every invariant", async () => {
    expect(await checkInvariants(target.db)).toEqual(CONSISTENT);
  });

  it("reports exactly what it read, imported, skipped, dropped and repaired", () => {
    expect(report).toEqual({ requestId: expect.stringMatching(/^import:\d{4}-/), ...FIRST_RUN });
  });

  it("writes an 'imported' event for every imported contact, linked as inserted", async () => {
    const events = await target.db
      .select()
      .from(identityEvents)
      .where(eq(identityEvents.requestId, report.requestId))
      .orderBy(asc(identityEvents.id));
    const imported = events.filter((event) => event.kind === "imported");
    expect(imported.map((event) => event.contactId)).toEqual(IMPORTED_IDS);
    expect(imported.every((event) => event.oldPrimaryId === null)).toBe(true);
    const primaryOf = new Map(imported.map((event) => [event.contactId, event.newPrimaryId]));
    expect(Object.fromEntries(primaryOf)).toMatchObject({ 1: 1, 2: 1, 3: 2, 4: 4, 13: 11, 15: 15 });
    const relinked = events.filter((event) => event.kind === "relinked");
    expect(relinked.map((e) => [e.contactId, e.oldPrimaryId, e.newPrimaryId])).toEqual([
      [3, 2, 1],
      [4, 4, 5],
    ]);
  });

  it("imports nothing and changes nothing when run a second time", async () => {
    const eventsBefore = await target.db.$count(identityEvents);
    const second = await importFromLegacy(target.db, source.db, { requestId: "import:again" });
    expect(second).toEqual({
      requestId: "import:again",
      rowsRead: 18,
      imported: 0,
      alreadyPresent: 15,
      skippedErased: 0,
      skippedInvalid: 2,
      skippedDuplicate: 1,
      emailsDropped: 1, // only rows not already present count: 8
      phoneNumbersDropped: 1,
      linksRepointed: 0,
      linksReset: 0,
      relinked: 0,
    });
    expect(await allContacts(target.db)).toEqual(afterFirstRun);
    expect(await target.db.$count(identityEvents)).toBe(eventsBefore);
  });
});

describe.skipIf(!postgresAvailable())("importing from a Prisma-made Contact table", () => {
  let sourceDatabase: TestDatabase;
  let targetDatabase: TestDatabase;
  let source: Connection;
  let target: Connection;

  beforeAll(async () => {
    sourceDatabase = await createDatabaseAwayFromUtc({ migrated: false });
    targetDatabase = await createDatabaseAwayFromUtc({ migrated: true });
    source = await connect({ DATABASE_URL: sourceDatabase.url });
    target = await connect({ DATABASE_URL: targetDatabase.url });
  });
  beforeEach(async () => {
    await source.db.execute(sql`drop table if exists "Contact", contact`);
    await source.db.execute(sql`drop type if exists "LinkPrecedence"`);
    await resetContacts(target);
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
    await sourceDatabase?.drop();
    await targetDatabase?.drop();
  });

  it('imports the quoted "Contact" table with its camelCase columns and enum as the unquoted one', async () => {
    await fillPrisma(source.db);
    const result = await importFromLegacy(target.db, source.db, { batchSize: 4 });
    expect(result).toMatchObject(FIRST_RUN);
    expect((await allContacts(target.db)).map((row) => row.id)).toEqual(IMPORTED_IDS);
    expect(await checkInvariants(target.db)).toEqual(CONSISTENT);
    const times = await targetTimes(target.db);
    expect(times.get(1)).toMatchObject({
      created: "2023-04-01 00:01:00.123000",
      updated: "2023-04-01 10:01:00.123000",
      deleted: null,
    });
  });

  it("reads Prisma's timestamptz(3) columns as the instants they hold", async () => {
    await fillPrisma(source.db, "timestamptz(3)");
    await importFromLegacy(target.db, source.db);
    const times = await targetTimes(target.db);
    expect(times.get(1)?.created).toBe("2023-04-01 00:01:00.123000");
    expect(times.get(14)?.deleted).toBe("2023-04-01 00:30:00.000000");
  });

  it('refuses, naming both, a source that has both a contact and a "Contact" table', async () => {
    await fillPrisma(source.db);
    await fillLegacy(source.db);
    const error = await failureOf(importFromLegacy(target.db, source.db));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/has both contact and "Contact"/);
    expect(await target.db.$count(contacts)).toBe(0);
  });
});

describe.skipIf(!postgresAvailable())("importing again after an erasure", () => {
  let sourceDatabase: TestDatabase;
  let targetDatabase: TestDatabase;
  let source: Connection;
  let target: Connection;
  let erased: number[];
  let afterErasure: Contact[];
  let second: ImportReport;

  beforeAll(async () => {
    sourceDatabase = await createPostgresDatabase({ migrated: false });
    targetDatabase = await createPostgresDatabase({ migrated: true });
    source = await connect({ DATABASE_URL: sourceDatabase.url });
    target = await connect({ DATABASE_URL: targetDatabase.url });
    await fillLegacy(source.db);
    await importFromLegacy(target.db, source.db, { batchSize: 4 });
    // Customer 1 (1, 2 and 3, with the deleted 14 sharing its phone), and customer 11 (11
    // and 13; the source's 12, the same email and phone as 11, was skipped as its duplicate).
    const first = await forgetCustomer(target.db, { email: "a@x.io" }, { requestId: "T-1" });
    const other = await forgetCustomer(target.db, { email: "dup@x.io" }, { requestId: "T-2" });
    erased = [...first.contactIds, ...other.contactIds];
    afterErasure = await allContacts(target.db);
    // The old service, still running, linked a new row to the erased primary.
    await source.db.execute(sql`insert into Contact
      (id, phoneNumber, email, linkedId, linkPrecedence, createdAt, updatedAt)
      values (19, '1919', 'new@x.io', 1, 'secondary', ${t(40)}::timestamp, ${t(40)}::timestamp)`);
    second = await importFromLegacy(target.db, source.db, { batchSize: 4, requestId: "import:2" });
  });
  afterAll(async () => {
    await source?.close();
    await target?.close();
    await sourceDatabase?.drop();
    await targetDatabase?.drop();
  });

  it("erased the two customers it is about", () => {
    expect(erased).toEqual([1, 2, 3, 14, 11, 13]);
  });

  it("brings back none of the erased contacts, by id or by value", async () => {
    const rows = await allContacts(target.db);
    for (const id of erased) expect(byId(rows, id)).toBeUndefined();
    const values = rows.flatMap((row) => [row.email, row.phoneNumber]);
    for (const value of ["a@x.io", "b@x.io", "c@x.io", "gone@x.io", "dup@x.io", "dup2@x.io"]) {
      expect(values).not.toContain(value);
    }
    expect(values).not.toContain("999");
  });

  it("skips a live row with the same email and phone as an erased one, its old duplicate", async () => {
    expect(byId(await allContacts(target.db), 12)).toBeUndefined();
  });

  it("imports a row linked to an erased contact as a primary, as any unusable link", async () => {
    const rows = await allContacts(target.db);
    expect(byId(rows, 19)).toMatchObject({ linkPrecedence: "primary", linkedId: null });
    expect(rows.filter((row) => row.id !== 19)).toEqual(afterErasure);
  });

  it("counts the erased rows in the report, every row read counted once", () => {
    expect(second).toEqual({
      requestId: "import:2",
      rowsRead: 19,
      imported: 1, // 19
      alreadyPresent: 9, // 4, 5, 6, 7, 9, 15, 16, 17, 18
      skippedErased: 7, // 1, 2, 3, 11, 13, 14 by id; 12 by value
      skippedInvalid: 2, // 8 and 10
      skippedDuplicate: 0,
      emailsDropped: 1, // 8
      phoneNumbersDropped: 1, // 8
      linksRepointed: 0,
      linksReset: 1, // 19
      relinked: 0,
    } satisfies ImportReport);
    const { imported, alreadyPresent, skippedErased, skippedInvalid, skippedDuplicate } = second;
    expect(imported + alreadyPresent + skippedErased + skippedInvalid + skippedDuplicate).toBe(
      second.rowsRead,
    );
  });
});

describe.skipIf(!postgresAvailable())("importing from the old service into other targets", () => {
  let sourceDatabase: TestDatabase;
  let source: Connection;

  beforeAll(async () => {
    sourceDatabase = await createPostgresDatabase({ migrated: false });
    source = await connect({ DATABASE_URL: sourceDatabase.url });
    await fillLegacy(source.db);
  });
  afterAll(async () => {
    await source?.close();
    await sourceDatabase?.drop();
  });

  // One embedded database for both tests, emptied before each: opening one costs a second
  // of CPU.
  describe("into the embedded database", () => {
    const backend = pgliteBackend();
    let embedded: Connection;
    beforeAll(async () => {
      embedded = await backend.open();
    });
    afterAll(() => backend.dispose());
    beforeEach(() => resetContacts(embedded));

    it("imports the same way", async () => {
      const result = await importFromLegacy(embedded.db, source.db);
      expect(result).toMatchObject(FIRST_RUN);
      expect((await allContacts(embedded.db)).map((row) => row.id)).toEqual(IMPORTED_IDS);
      expect(await checkInvariants(embedded.db)).toEqual(CONSISTENT);
    });

    it("leaves the target untouched when the import fails part-way", async () => {
      // An invalid junk pattern makes settling fail after every row has been inserted.
      const error = await failureOf(
        importFromLegacy(embedded.db, source.db, { guardrails: { junkEmailPatterns: ["("] } }),
      );
      expect(databaseError(error)).toMatchObject({
        code: INVALID_REGULAR_EXPRESSION,
        message: expect.stringMatching(/^invalid regular expression/),
      });
      expect(await embedded.db.$count(contacts)).toBe(0);
      expect(await embedded.db.$count(identityEvents)).toBe(0);
    });
  });

  describe("the command", () => {
    /** Runs `tsx scripts/import.ts` with the given arguments and database variables. */
    const runImport = (args: string[], env: Record<string, string>) =>
      runMain("scripts/import.ts", args, env);

    it("migrates DATABASE_URL, imports into it and prints the report", async () => {
      // Empty: the command must migrate it first.
      const targetDatabase = await createPostgresDatabase({ migrated: false });
      try {
        const result = await runImport(["--from", sourceDatabase.url], {
          DATABASE_URL: targetDatabase.url,
        });
        expect(result.output).toMatch(/rows read\s+18\n/);
        expect(result.output).toMatch(/imported\s+15\n/);
        expect(result.output).toMatch(/relinked by settling\s+2$/m);
        expect(result.code).toBe(0);
        const check = await connect({ DATABASE_URL: targetDatabase.url });
        try {
          expect(await check.db.$count(contacts)).toBe(15);
        } finally {
          await check.close();
        }
      } finally {
        await targetDatabase.drop();
      }
    });

    it("keeps a customer erased by npm run forget out of the next import, and says how many rows it skipped", async () => {
      const targetDatabase = await createPostgresDatabase({ migrated: true });
      const env = { DATABASE_URL: targetDatabase.url };
      try {
        expect((await runImport(["--from", sourceDatabase.url], env)).code).toBe(0);
        const forget = await runMain("scripts/forget.ts", ["--email", "a@x.io", "--yes"], env);
        expect(forget.output).toContain("Erased 4 contact(s): 1, 2, 3, 14");
        const again = await runImport(["--from", sourceDatabase.url], env);
        expect(again.code).toBe(0);
        expect(again.output).toMatch(/erased, not imported\s+4 /);
        expect(again.output).toMatch(/imported\s+0\n/);
        const check = await connect({ DATABASE_URL: targetDatabase.url });
        try {
          expect((await allContacts(check.db)).map((row) => row.id)).toEqual(
            IMPORTED_IDS.filter((id) => ![1, 2, 3, 14].includes(id)),
          );
        } finally {
          await check.close();
        }
      } finally {
        await targetDatabase.drop();
      }
    });

    it("fails with a clear message and exit code 1 without --from", async () => {
      const result = await runImport([], { PGLITE_DIR: "memory://" });
      expect(result.code).toBe(1);
      expect(result.output).toMatch(/Missing --from/);
      expect(result.output).toMatch(/Usage: npm run import -- --from postgres:\/\//);
    });
  });
});
