/**
 * The HTTP contract of the exported handler: requests built with `new Request`, assertions
 * on the `Response`, on each database the product runs on. The handler opens its database
 * from the environment, so it runs on the one its test file serves (servedDatabase). What it
 * refuses before opening a database is tested once, in test/request-refusals.test.ts.
 */
import { sql } from "drizzle-orm";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { getConnection } from "../../lib/db/client.js";
import { allContacts } from "../support/contacts.js";
import { type Backend, connect, resetContacts } from "../support/databases.js";
import { errorOf, postIdentify } from "../support/http.js";

const post = postIdentify;

async function contactOf(response: Response) {
  expect(response.status).toBe(200);
  const body = (await response.json()) as { contact: Record<string, unknown> };
  return body.contact;
}

/** The contract on the database the test file serves (servedDatabase). */
export function handlerSuite(database: Backend) {
  const backendName = database.name;
  describe.skipIf(!database.available)(`POST /identify on ${backendName}`, () => {
    beforeEach(async () => resetContacts(await getConnection()));

    const rows = async () => allContacts((await getConnection()).db);

    it("answers 200 JSON with the customer and the deprecated alias carrying the same id", async () => {
      const response = await post({ email: "doc@hillvalley.edu", phoneNumber: "555" });
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const contact = await contactOf(response);
      expect(Object.keys(contact)).toEqual([
        "primaryContactId",
        "primaryContatctId",
        "emails",
        "phoneNumbers",
        "secondaryContactIds",
      ]);
      expect(contact.primaryContatctId).toBe(contact.primaryContactId);
      expect(contact).toMatchObject({
        emails: ["doc@hillvalley.edu"],
        phoneNumbers: ["555"],
        secondaryContactIds: [],
      });
    });

    it("answers the first worked example and its three lookups identically", async () => {
      await post({ email: "lorraine@hillvalley.edu", phoneNumber: "123456" });
      const expected = await contactOf(
        await post({ email: "mcfly@hillvalley.edu", phoneNumber: "123456" }),
      );
      const mcfly = (await rows()).find((row) => row.email === "mcfly@hillvalley.edu");
      expect(expected).toMatchObject({
        emails: ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"],
        phoneNumbers: ["123456"],
        secondaryContactIds: [mcfly?.id],
      });
      const before = await rows();
      for (const body of [
        { email: null, phoneNumber: "123456" },
        { email: "lorraine@hillvalley.edu", phoneNumber: null },
        { email: "mcfly@hillvalley.edu", phoneNumber: null },
      ]) {
        expect(await contactOf(await post(body))).toEqual(expected);
      }
      expect(await rows()).toEqual(before);
    });

    it("answers the second worked example by merging into george", async () => {
      const george = await contactOf(
        await post({ email: "george@hillvalley.edu", phoneNumber: "919191" }),
      );
      const biff = await contactOf(
        await post({ email: "biffsucks@hillvalley.edu", phoneNumber: "717171" }),
      );
      const merged = await contactOf(
        await post({ email: "george@hillvalley.edu", phoneNumber: "717171" }),
      );
      expect(merged).toEqual({
        primaryContactId: george.primaryContactId,
        primaryContatctId: george.primaryContactId,
        emails: ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
        phoneNumbers: ["919191", "717171"],
        secondaryContactIds: [biff.primaryContactId],
      });
      expect(await rows()).toHaveLength(2);
    });

    it("normalizes the email's case and spaces and the phone's separators", async () => {
      await post({ email: "doc@hillvalley.edu", phoneNumber: "+1 555 0100" });
      const contact = await contactOf(
        await post({ email: "  Doc@HillValley.EDU ", phoneNumber: "+1 (555) 01-00" }),
      );
      expect(contact).toMatchObject({
        emails: ["doc@hillvalley.edu"],
        phoneNumbers: ["+15550100"],
      });
      expect(await rows()).toHaveLength(1);
    });

    it("accepts the phone number as a JSON number and answers it as a string", async () => {
      const contact = await contactOf(await post({ phoneNumber: 123456 }));
      expect(contact.phoneNumbers).toEqual(["123456"]);
    });

    it("accepts real-world addresses with apostrophes and plus tags", async () => {
      const contact = await contactOf(await post({ email: "o'brien@example.com" }));
      const tagged = await contactOf(await post({ email: "first+tag@example.co.uk" }));
      expect(contact.emails).toEqual(["o'brien@example.com"]);
      expect(tagged.emails).toEqual(["first+tag@example.co.uk"]);
    });

    it("ignores unknown fields", async () => {
      const contact = await contactOf(await post({ email: "doc@x.io", orderId: 42 }));
      expect(contact.emails).toEqual(["doc@x.io"]);
    });

    it("accepts application/json with a charset parameter", async () => {
      const response = await post(
        { email: "doc@x.io" },
        { headers: { "Content-Type": "application/json; charset=utf-8" } },
      );
      expect(response.status).toBe(200);
    });

    it("hides SQL and driver messages from a 500 and logs them under the request id", async () => {
      const { db } = await getConnection();
      await db.execute(
        sql`alter function identify_contact(text, text, jsonb) rename to identify_contact_away`,
      );
      const logged = vi.spyOn(console, "error").mockImplementation(() => {});
      try {
        const response = await post({ email: "doc@x.io" });
        const text = await response.clone().text();
        const error = await errorOf(response, 500, "internal_error");
        expect(text).not.toMatch(/identify_contact|select|function|stack|at /i);
        const line = logged.mock.calls
          .map((call) => String(call[0]))
          .find((l) => l.includes(error.requestId));
        expect(line).toMatch(/identify_contact/);
        expect(line).not.toContain("doc@x.io");
      } finally {
        logged.mockRestore();
        await db.execute(
          sql`alter function identify_contact_away(text, text, jsonb) rename to identify_contact`,
        );
      }
    });

    it.skipIf(backendName !== "postgres")(
      "answers 503 with Retry-After when a lock wait times out, and writes nothing",
      async () => {
        const blocker = await connect({ DATABASE_URL: database.url() });
        try {
          const response = await blocker.db.transaction(async (tx) => {
            await tx.execute(sql`lock table contacts in access exclusive mode`);
            return post({ email: "doc@x.io", phoneNumber: "555" });
          });
          expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
          await errorOf(response, 503, "database_unavailable");
          expect(await rows()).toHaveLength(0);
        } finally {
          await blocker.close();
        }
      },
    );

    it("writes one log line per request with the request id and outcome but no email or phone", async () => {
      const logged = vi.spyOn(console, "log").mockImplementation(() => {});
      try {
        const response = await post({ email: "private@x.io", phoneNumber: "5550199" });
        const requestId = response.headers.get("x-request-id");
        const lines = logged.mock.calls.map((call) => String(call[0]));
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
          requestId,
          status: 200,
          outcome: "created",
        });
        expect(lines[0]).not.toMatch(/private@x\.io|5550199/);
      } finally {
        logged.mockRestore();
      }
    });
  });
}
