/**
 * One configuration for every path that links: the real `npm start`, given only
 * DATABASE_URL, on a database whose production build recorded JUNK_EMAILS=test@test.com,
 * links with that record as the tools and the deployed function do, so two strangers who
 * both typed the junk email stay apart; and a local guardrail variable that differs from the
 * record stops start-up, naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { runMain } from "./support/scripts.js";
import { refusedStart, type Service, spawnService } from "./support/service.js";

/** Starting a process and opening a database take seconds on a busy machine. */
const SPAWN_TEST_TIMEOUT_MS = 120_000;

const JUNK = "test@test.com";

/** POSTs the junk email with a phone number; answers the customer's primary contact id. */
async function primaryOf(port: number, phoneNumber: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/identify`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: JUNK, phoneNumber }),
  });
  expect(response.status).toBe(200);
  const { contact } = (await response.json()) as { contact: { primaryContactId: number } };
  return contact.primaryContactId;
}

async function stop(service: Service): Promise<void> {
  service.child.kill("SIGTERM");
  await service.exited;
}

describe.skipIf(!postgresAvailable())(
  "npm start on a database a production build recorded guardrails in",
  () => {
    let database: TestDatabase;

    beforeAll(async () => {
      database = await createPostgresDatabase();
      // Production's build records its environment's guardrails, as `npm run vercel-build` does
      // (its main, in this process: the record is what matters here, not the process).
      const built = await runMain("scripts/migrate.ts", ["--deploy"], {
        VERCEL_ENV: "production",
        DATABASE_URL: database.url,
        API_KEYS: "k3y-for-start-tests-0123456789",
        JUNK_EMAILS: JUNK,
      });
      expect(built.code, built.output).toBe(0);
    });
    afterAll(() => database?.drop());

    it(
      "keeps two strangers who typed the recorded junk email apart, with only DATABASE_URL set",
      async () => {
        const service = spawnService({ DATABASE_URL: database.url });
        try {
          const port = await service.listening;
          const first = await primaryOf(port, "5550100001");
          const second = await primaryOf(port, "5550100002");
          expect(second).not.toBe(first);
        } finally {
          await stop(service);
        }
      },
      SPAWN_TEST_TIMEOUT_MS,
    );

    it(
      "refuses to start with a JUNK_EMAILS that differs from the record, naming it",
      async () => {
        const service = spawnService({
          DATABASE_URL: database.url,
          JUNK_EMAILS: "other@example.com",
        });
        const outcome = await refusedStart(service);
        expect(outcome).toBe(1);
        const refusal = service.lines.find((line) => line.msg === "could not start");
        expect(String(refusal?.error)).toMatch(
          /^JUNK_EMAILS here differ from the guardrails the production deployment recorded/,
        );
      },
      SPAWN_TEST_TIMEOUT_MS,
    );
  },
);
