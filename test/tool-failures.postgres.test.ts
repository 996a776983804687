/**
 * No value a tool was given appears in its output when it fails: each tool meets a table or
 * the migration lock held by another session, gives up after DB_QUERY_TIMEOUT_MS, and must
 * print why (the timeout) and nothing it was given: not the email or phone number it was asked
 * about, not a value of the source it read, not the password of a URL, and never the driver's
 * "Failed query … params:" message, which quotes them all. What a tool prints is what its
 * `main` prints, so the tools run in this process (runMain); `npm start`, which has no `main`,
 * runs as npm runs it.
 */
import { type SQL, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATION_LOCK_KEY } from "../lib/db/migrate.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runMain } from "./support/scripts.js";
import { refusedStart, spawnService } from "./support/service.js";

/** Starting `npm start`'s process takes seconds on a busy machine. */
const TOOL_TEST_TIMEOUT_MS = 120_000;

const EMAIL = "locked.out@example.com";
const PHONE = "5550424242";
const PASSWORD = "pw-never-printed-9731";

/**
 * How long each tool waits for the database before it gives up, here: long enough for the
 * statements before the locked one, which nothing blocks, and short, since every test waits
 * it out. It ends forget's wait too, well before the lock timeout forget sets itself.
 */
const TIMEOUT = { DB_QUERY_TIMEOUT_MS: "300" };

/** `url` with PASSWORD in it (the local server trusts, and ignores it). */
function withPassword(url: string): string {
  const parsed = new URL(url);
  parsed.username = "postgres";
  parsed.password = PASSWORD;
  return parsed.toString();
}

/** Runs `work` while another session holds the lock `lock` takes, in an open transaction. */
async function whileLocked<T>(url: string, lock: SQL, work: () => Promise<T>): Promise<T> {
  const holder = await connect({ DATABASE_URL: url });
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let taken = () => {};
  const isTaken = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const held = holder.db.transaction(async (tx) => {
    await tx.execute(lock);
    taken();
    await released;
  });
  await Promise.race([isTaken, held]);
  try {
    return await work();
  } finally {
    release();
    await held;
    await holder.close();
  }
}

/** Runs `work` on a database of its own, never migrated, dropped afterwards. */
async function onEmptyDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const database = await createPostgresDatabase({ migrated: false });
  try {
    return await work(database.url);
  } finally {
    await database.drop();
  }
}

/** What every failed tool's output must be: the reason, and nothing it was given. */
function expectReasonOnly(output: string, given: readonly string[]): void {
  expect(output).toMatch(/timeout/i);
  for (const value of [...given, PASSWORD, "params", "Failed query"]) {
    expect(output).not.toContain(value);
  }
}

const LOCK_CONTACTS = sql`lock table contacts in access exclusive mode`;
const LOCK_MIGRATIONS = sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}::bigint)`;

describe.skipIf(!postgresAvailable())("a tool that times out behind a lock", () => {
  let migrated: TestDatabase;

  beforeAll(async () => {
    migrated = await createPostgresDatabase();
  });
  afterAll(() => migrated?.drop());

  it.each([
    { tool: "explain", args: ["--email", EMAIL], given: EMAIL },
    { tool: "forget", args: ["--phone", PHONE, "--yes"], given: PHONE },
  ])(
    "$tool prints the reason, not the identifier it was asked about",
    async ({ tool, args, given }) => {
      const result = await whileLocked(migrated.url, LOCK_CONTACTS, () =>
        runMain(`scripts/${tool}.ts`, args, {
          DATABASE_URL: withPassword(migrated.url),
          ...TIMEOUT,
        }),
      );
      expect(result.code).toBe(1);
      expectReasonOnly(result.output, [given]);
    },
    TOOL_TEST_TIMEOUT_MS,
  );

  it(
    "import prints the reason, not a value of the source or its password",
    async () => {
      const result = await onEmptyDatabase(async (legacyUrl) => {
        const source = await connect({ DATABASE_URL: legacyUrl });
        await source.db.execute(sql`create table contact (
          id int primary key, phonenumber varchar, email varchar, linkedid int,
          linkprecedence varchar, createdat timestamp not null, updatedat timestamp not null,
          deletedat timestamp)`);
        await source.db.execute(sql`insert into contact
          (id, phonenumber, email, linkprecedence, createdat, updatedat)
          values (1, ${PHONE}, ${EMAIL}, 'primary', now(), now())`);
        await source.close();
        return whileLocked(migrated.url, LOCK_CONTACTS, () =>
          runMain("scripts/import.ts", ["--from", withPassword(legacyUrl)], {
            DATABASE_URL: migrated.url,
            ...TIMEOUT,
          }),
        );
      });
      expect(result.code).toBe(1);
      expectReasonOnly(result.output, [EMAIL, PHONE]);
    },
    TOOL_TEST_TIMEOUT_MS,
  );

  it(
    "db:migrate prints the reason, not the password of the URL it was given",
    async () => {
      const result = await onEmptyDatabase((url) =>
        whileLocked(url, LOCK_MIGRATIONS, () =>
          runMain("scripts/migrate.ts", [], { DATABASE_URL: withPassword(url), ...TIMEOUT }),
        ),
      );
      expect(result.code).toBe(1);
      expectReasonOnly(result.output, []);
    },
    TOOL_TEST_TIMEOUT_MS,
  );

  it(
    "npm start logs the reason it could not start, not the driver's message",
    async () => {
      const service = await onEmptyDatabase((url) =>
        whileLocked(url, LOCK_MIGRATIONS, async () => {
          const started = spawnService({ DATABASE_URL: withPassword(url), ...TIMEOUT });
          await refusedStart(started);
          return started;
        }),
      );
      expect(await service.exited).toBe(1);
      const output = service.output.join("\n");
      expect(output).toContain("could not start");
      expectReasonOnly(output, []);
    },
    TOOL_TEST_TIMEOUT_MS,
  );
});
