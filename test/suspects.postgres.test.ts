/**
 * `npm run suspects` (lib/suspects.ts): the values that join strangers come first, with their
 * counts, marked when the deployment already lists them, and the customers near the cap.
 * Sixty strangers typed test@test.com (a customer of 60, past 80% of a cap of 70); a real
 * customer's phone is shared by its 3 contacts. On a PostgreSQL database of this file's own.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { identifyDatabase, recordDeployment } from "../lib/db/deployment.js";
import type { Guardrails } from "../lib/guardrails.js";
import { identify } from "../lib/identify.js";
import { findSuspects, formatSuspects } from "../lib/suspects.js";
import { postgresAvailable, postgresBackend } from "./support/databases.js";
import { sequentialScansOf } from "./support/scans.js";
import { runMain } from "./support/scripts.js";

const JUNK = "test@test.com";
const FAMILY_PHONE = "5550400001";
const CAP = 70;

describe.skipIf(!postgresAvailable())("npm run suspects", () => {
  const backend = postgresBackend();
  let connection: Connection;

  beforeAll(async () => {
    connection = await backend.open();
    const send = (email: string, phoneNumber: string) =>
      identify(
        connection.db,
        { email, phoneNumber },
        { lockTimeoutMs: 5000, requestId: "checkout", guardrails: { maxContacts: CAP } },
      );
    for (let i = 0; i < 60; i++) await send(JUNK, String(5_550_500_000 + i));
    for (const name of ["lorraine", "george", "dave"]) await send(`${name}@hv.edu`, FAMILY_PHONE);
  });
  afterAll(() => backend.dispose());

  it("lists test@test.com with 60 contacts ahead of a phone shared by 3, and nothing carried once", async () => {
    const { values } = await findSuspects(connection.db, 20, { maxContacts: CAP });
    expect(values.map((v) => [v.kind, v.value, v.contacts, v.customers])).toEqual([
      ["email", JUNK, 60, 1],
      ["phone", FAMILY_PHONE, 3, 1],
    ]);
  });

  it("marks a value the guardrails already list as junk", async () => {
    const guardrails: Guardrails = { junkEmails: [JUNK], maxContacts: CAP };
    const text = formatSuspects(await findSuspects(connection.db, 20, guardrails));
    expect(text).toMatch(/60 {2}email {2}test@test\.com {2}in customer 1 {2}\(junk already\)/);
    expect(text).not.toMatch(/5550400001 .*junk already/);
  });

  it("lists the customers at or above 80% of the cap with their sizes", async () => {
    const suspects = await findSuspects(connection.db, 20, { maxContacts: CAP });
    expect(suspects.largeCustomers).toEqual([{ customerId: 1, contacts: 60 }]);
    const smaller = await findSuspects(connection.db, 20, { maxContacts: 100 });
    expect(smaller.largeCustomers).toEqual([]);
  });

  it("prints them with only DATABASE_URL set, reading the deployment's guardrails", async () => {
    await recordDeployment(connection.db, "production", await identifyDatabase(connection.db), {
      junkEmails: [JUNK],
      maxContacts: CAP,
    });
    try {
      const { code, stdout } = await runMain("scripts/suspects.ts", ["--limit", "1"], {
        DATABASE_URL: backend.url() ?? "",
      });
      expect(code).toBe(0);
      expect(stdout).toContain("Guardrails: those of the production deployment");
      expect(stdout).toContain("(junk already)");
      expect(stdout).not.toContain(FAMILY_PHONE);
      expect(stdout).toContain("customer 1: 60 contacts");
    } finally {
      await connection.db.execute(sql`delete from deployment`);
    }
  });

  it("reads contacts through indexes only, never a sequential scan", async () => {
    const scans = await sequentialScansOf(connection.db, async (tx) => {
      await tx.execute(sql`select * from identify_relink_suspects(20, 100000)`);
      await tx.execute(sql`select * from identify_relink_large_customers(2, 100000)`);
      await tx.execute(
        sql`select * from identify_relink_changed_values('{}', '{"junkEmailPatterns": ["^t"]}')`,
      );
    });
    expect(scans).toBe(0);
  });

  it("exits 2 on a limit that is no number, quoting nothing", async () => {
    const { code, output } = await runMain("scripts/suspects.ts", ["--limit", "lots"], {
      DATABASE_URL: backend.url() ?? "",
    });
    expect(code).toBe(2);
    expect(output).toContain("--limit must be a whole number");
    expect(output).not.toContain("lots");
  });
});
