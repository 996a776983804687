/**
 * One configuration: the command-line tools apply the guardrails the deployment recorded in
 * its database, so an operator who sets only DATABASE_URL links, settles and erases
 * customers exactly as the deployed function does. Here production treats test@test.com as
 * junk, and two strangers typed it; the tools run with nothing but DATABASE_URL.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { identifyDatabase, recordDeployment } from "../lib/db/deployment.js";
import { ConfigError } from "../lib/errors.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runMain } from "./support/scripts.js";

const JUNK = "test@test.com";
const STRANGER_A = "5550100001";
const STRANGER_B = "5550100002";

describe.skipIf(!postgresAvailable())("one configuration for the function and the tools", () => {
  let database: TestDatabase;
  let connection: Connection;
  let strangerA: number;
  let strangerB: number;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    // Production's build records its environment's guardrails, as `npm run vercel-build` does.
    const built = await runMain("scripts/migrate.ts", ["--deploy"], {
      VERCEL_ENV: "production",
      // A deploy build refuses to run without keys.
      API_KEYS: "k3y-for-tests-0123456789",
      DATABASE_URL: database.url,
      JUNK_EMAILS: JUNK,
      MAX_CONTACTS_PER_CUSTOMER: "50",
    });
    expect(built.code).toBe(0);
    connection = await connect({ DATABASE_URL: database.url });
    // The function, with production's guardrails: the junk email links nobody.
    const guardrails = { junkEmails: [JUNK], maxContacts: 50 };
    const send = async (phoneNumber: string) =>
      (
        await identify(
          connection.db,
          { email: JUNK, phoneNumber },
          { lockTimeoutMs: 5000, requestId: "checkout", guardrails },
        )
      ).customer.primaryContactId;
    strangerA = await send(STRANGER_A);
    strangerB = await send(STRANGER_B);
    expect(strangerA).not.toBe(strangerB);
  });
  afterAll(async () => {
    await connection.close();
    await database.drop();
  });

  it("gives a tool with only DATABASE_URL the guardrails production recorded", async () => {
    const { guardrails, source } = await deployedGuardrails(connection.db, {
      DATABASE_URL: database.url,
    });
    expect(guardrails).toEqual({ junkEmails: [JUNK], maxContacts: 50 });
    expect(source).toMatch(/^the production deployment/);
  });

  it("refuses a local guardrail variable that differs from the deployment's, naming it", async () => {
    await expect(
      deployedGuardrails(connection.db, { DATABASE_URL: database.url, JUNK_EMAILS: "x@y.com" }),
    ).rejects.toThrow(ConfigError);
    await expect(
      deployedGuardrails(connection.db, { DATABASE_URL: database.url, JUNK_EMAILS: "x@y.com" }),
    ).rejects.toThrow(/JUNK_EMAILS here differ from the guardrails the production deployment/);
  });

  it("accepts a local guardrail variable that says what the deployment recorded", async () => {
    const { guardrails } = await deployedGuardrails(connection.db, {
      DATABASE_URL: database.url,
      JUNK_EMAILS: ` ${JUNK.toUpperCase()} `,
      MAX_CONTACTS_PER_CUSTOMER: "50",
    });
    expect(guardrails.junkEmails).toEqual([JUNK]);
  });

  it("uses the environment's guardrails where no deployment recorded any", async () => {
    const fresh = await createPostgresDatabase();
    const local = await connect({ DATABASE_URL: fresh.url });
    try {
      const { guardrails, source } = await deployedGuardrails(local.db, {
        DATABASE_URL: fresh.url,
        JUNK_PHONE_NUMBERS: "0000000",
      });
      expect(guardrails).toEqual({ junkPhones: ["0000000"], maxContacts: 1000 });
      expect(source).toMatch(/^this environment/);
    } finally {
      await local.close();
      await fresh.drop();
    }
  });

  it("explains one stranger only, with only DATABASE_URL set", async () => {
    const { code, output } = await runMain("scripts/explain.ts", ["--phone", STRANGER_A], {
      DATABASE_URL: database.url,
    });
    expect(code).toBe(0);
    expect(output).toContain(STRANGER_A);
    expect(output).not.toContain(STRANGER_B);
  });

  it("imports two legacy strangers who share production's junk email as two customers, with only DATABASE_URL set", async () => {
    const legacy = await createPostgresDatabase({ migrated: false });
    try {
      const source = await connect({ DATABASE_URL: legacy.url });
      try {
        await source.db.execute(sql`create table contact (
          id integer primary key, phonenumber varchar, email varchar, linkedid integer,
          linkprecedence varchar, createdat timestamp not null, updatedat timestamp not null,
          deletedat timestamp)`);
        await source.db.execute(sql`insert into contact values
          (9001, '5550109001', ${JUNK}, null, 'primary', '2020-01-01', '2020-01-01', null),
          (9002, '5550109002', ${JUNK}, null, 'primary', '2020-01-02', '2020-01-02', null)`);
      } finally {
        await source.close();
      }
      const { code, output } = await runMain("scripts/import.ts", ["--from", legacy.url], {
        DATABASE_URL: database.url,
      });
      expect(output).toContain("Guardrails: those of the production deployment");
      expect(code).toBe(0);
      const rows = await connection.db.execute(
        sql`select id, linked_id from contacts where id in (9001, 9002) order by id`,
      );
      expect((rows as unknown as { rows: unknown[] }).rows).toEqual([
        { id: 9001, linked_id: null },
        { id: 9002, linked_id: null },
      ]);
    } finally {
      await legacy.drop();
    }
  });

  it("erases one of two strangers who share production's junk email, with only DATABASE_URL set", async () => {
    const { code, output } = await runMain("scripts/forget.ts", ["--phone", STRANGER_A, "--yes"], {
      DATABASE_URL: database.url,
    });
    expect(output).toContain("Guardrails: those of the production deployment");
    expect(output).toContain(`Erased 1 contact(s): ${strangerA}`);
    expect(code).toBe(0);
    const left = await connection.db.execute(
      sql`select id from contacts where email = ${JUNK} order by id`,
    );
    expect((left as unknown as { rows: { id: number }[] }).rows.map((row) => row.id)).toContain(
      strangerB,
    );
  });

  it("records a preview's own guardrails on its own database", async () => {
    const own = await createPostgresDatabase({ migrated: false });
    try {
      const built = await runMain("scripts/migrate.ts", ["--deploy"], {
        VERCEL_ENV: "preview",
        API_KEYS: "k3y-for-tests-0123456789",
        DATABASE_URL: own.url,
        JUNK_PHONE_NUMBERS: "/^0+$/",
      });
      expect(built.code).toBe(0);
      const inspect = await connect({ DATABASE_URL: own.url });
      try {
        const { guardrails, source } = await deployedGuardrails(inspect.db, {});
        expect(guardrails).toEqual({ junkPhonePatterns: ["^0+$"], maxContacts: 1000 });
        expect(source).toMatch(/^the preview deployment/);
        // What the build recorded is this very database, as the server names it.
        expect((await identifyDatabase(inspect.db)).databaseName).toBe(
          new URL(own.url).pathname.slice(1),
        );
        // A production build later takes the database over, with its own settings.
        await recordDeployment(inspect.db, "production", await identifyDatabase(inspect.db), {});
        expect((await deployedGuardrails(inspect.db, {})).source).toMatch(/^the production/);
      } finally {
        await inspect.close();
      }
    } finally {
      await own.drop();
    }
  });
});
