/**
 * identify behind a transaction-mode pooler (PgBouncer, what Neon's pooled URL is): the
 * deploy migration run twice, and a concurrent burst on one customer through it, each
 * leaving no advisory lock held on any pooled server connection.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Connection, closeDatabase } from "../lib/db/client.js";
import { checkInvariants, violationCount } from "../lib/db/invariants.js";
import { queryRows } from "../lib/db/query.js";
import {
  ADMIN_URL,
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { postIdentify } from "./support/http.js";
import { type Pgbouncer, pgbouncerAvailable, startPgbouncer } from "./support/pgbouncer.js";
import { runMain } from "./support/scripts.js";

describe.skipIf(!postgresAvailable() || !pgbouncerAvailable())(
  "behind PgBouncer in transaction mode",
  () => {
    let database: TestDatabase;
    let pgbouncer: Pgbouncer;
    let direct: Connection;
    let pooledUrl: string;

    /** Advisory locks held on the test database by any backend. */
    const advisoryLocks = async () => {
      const [row] = await queryRows<{ held: number }>(
        direct.db,
        sql`select count(*)::int as held from pg_locks l join pg_database d on d.oid = l.database
          where l.locktype = 'advisory' and d.datname = current_database()`,
      );
      return row?.held;
    };

    const migrateThroughPooler = () =>
      runMain("scripts/migrate.ts", ["--deploy"], {
        DATABASE_URL: pooledUrl,
        VERCEL_ENV: "production",
        // A deploy build refuses to run without keys.
        API_KEYS: "k3y-for-tests-0123456789",
      });

    beforeAll(async () => {
      // Empty, so the first migration through the pooler does all the work.
      database = await createPostgresDatabase({ migrated: false });
      pgbouncer = await startPgbouncer(ADMIN_URL);
      pooledUrl = pgbouncer.pooled(database.url);
      direct = await connect({ DATABASE_URL: database.url });
    });
    afterAll(async () => {
      await closeDatabase();
      await direct?.close();
      await pgbouncer?.stop();
      await database?.drop();
      delete process.env.DATABASE_URL;
    });

    it("migrates twice through the pooler, leaving no advisory lock behind", async () => {
      const first = await migrateThroughPooler();
      expect(first.code, first.output).toBe(0);
      expect(first.stdout).toMatch(/migration\(s\) applied/);
      const second = await migrateThroughPooler();
      expect(second.code, second.output).toBe(0);
      expect(second.stdout).toMatch(/0 migration\(s\) applied/);
      expect(await advisoryLocks()).toBe(0);
    });

    // Every kind of request through the pooler is test/handler-pgbouncer.postgres.test.ts; this is
    // what that suite does not check: requests racing on one customer through it, and the
    // locks they leave behind.
    it("keeps one customer and leaves no advisory lock behind after a concurrent burst through the pooler", async () => {
      process.env.DATABASE_URL = pooledUrl;
      const post = async (body: unknown) => {
        const response = await postIdentify(body);
        expect(response.status).toBe(200);
        return ((await response.json()) as { contact: { primaryContactId: number } }).contact;
      };
      const burst = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          post({ email: `burst${i % 6}@example.com`, phoneNumber: "2015" }),
        ),
      );
      expect(new Set(burst.map((contact) => contact.primaryContactId)).size).toBe(1);
      expect(violationCount(await checkInvariants(direct.db, {}))).toBe(0);
      expect(await advisoryLocks()).toBe(0);
    });
  },
);
