/**
 * `npm run explain`: the customer and its story, from the audit trail; lib/explain.ts on the
 * embedded database, and the command line (its main, in this process) on PostgreSQL: the
 * embedded database opens for one holder at a time, and the test holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { describeEvent, explainCustomer, formatExplanation } from "../lib/explain.js";
import { identify } from "../lib/identify.js";
import { pgliteBackend, postgresAvailable, postgresBackend } from "./support/databases.js";
import { runMain } from "./support/scripts.js";

/** Sends a request to the reconciler and answers with the customer. */
const sender =
  (connection: Connection) => async (email: string, phoneNumber: string, requestId: string) =>
    (await identify(connection.db, { email, phoneNumber }, { lockTimeoutMs: 5000, requestId }))
      .customer;

/** Worked example 2: two customers joined by a request, sharing no value between them. */
async function plantGeorgeAndBiff(connection: Connection) {
  const send = sender(connection);
  const george = (await send("george@hillvalley.edu", "919191", "req-george")).primaryContactId;
  const biff = (await send("biffsucks@hillvalley.edu", "717171", "req-biff")).primaryContactId;
  await send("george@hillvalley.edu", "717171", "req-merge");
  return { george, biff };
}

describe("explaining a customer", () => {
  const backend = pgliteBackend();
  let connection: Connection;
  const ids = { george: 0, biff: 0, lorraine: 0, mcfly: 0 };

  beforeAll(async () => {
    connection = await backend.open();
    const send = sender(connection);
    Object.assign(ids, await plantGeorgeAndBiff(connection));
    // Worked example 1: a secondary that shares its phone number with the primary.
    ids.lorraine = (await send("lorraine@hillvalley.edu", "123456", "req-l")).primaryContactId;
    const mcfly = await send("mcfly@hillvalley.edu", "123456", "req-m");
    ids.mcfly = mcfly.secondaryContactIds[0] ?? 0;
  });
  afterAll(() => backend.dispose());

  it("finds the whole customer from a secondary's phone number", async () => {
    const explanation = await explainCustomer(connection.db, { phoneNumber: "717171" });
    expect(explanation?.contacts.map((c) => c.id)).toEqual([ids.george, ids.biff]);
  });

  it("tells the merge as 'became secondary of', with the request that did it", async () => {
    const explanation = await explainCustomer(connection.db, { id: ids.biff });
    const merge = explanation?.events.find((e) => e.requestId === "req-merge");
    expect(merge && describeEvent(merge)).toBe(
      `contact ${ids.biff} became secondary of ${ids.george} (it was a primary)`,
    );
    expect(explanation?.events.map((e) => e.kind)).toEqual([
      "created_primary",
      "created_primary",
      "relinked",
    ]);
  });

  it("answers null for an identifier nobody has", async () => {
    expect(await explainCustomer(connection.db, { email: "nobody@x.io" })).toBeNull();
  });

  it("names each pair of contacts that share a value, and the value", async () => {
    const explanation = await explainCustomer(connection.db, { phoneNumber: "123456" });
    expect(explanation?.sharedValues).toEqual([
      { a: ids.lorraine, b: ids.mcfly, kind: "phone", value: "123456" },
    ]);
    const text = explanation ? formatExplanation(explanation) : "";
    expect(text).toContain(
      `Linked by shared values:\n  ${ids.lorraine} and ${ids.mcfly} share phone 123456\n`,
    );
  });

  it("says so when contacts share no value and are linked only by the requests that joined them", async () => {
    const explanation = await explainCustomer(connection.db, { email: "george@hillvalley.edu" });
    expect(explanation?.sharedValues).toEqual([]);
    const text = explanation ? formatExplanation(explanation) : "";
    expect(text).toContain(
      "Linked by shared values:\n  (none: a single contact, or contacts a request joined by bringing one's email with another's phone; see History)\n",
    );
  });

  it("formats the contacts oldest first and every event with its request", async () => {
    const explanation = await explainCustomer(connection.db, { email: "george@hillvalley.edu" });
    const lines = (explanation ? formatExplanation(explanation) : "").split("\n");
    /** The lines under a heading, up to the blank line that ends its section. */
    const section = (heading: string) => {
      const rest = lines.slice(lines.indexOf(heading) + 1);
      return rest.slice(0, rest.includes("") ? rest.indexOf("") : undefined);
    };
    const time = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z`;
    const line = (text: string) => expect.stringMatching(new RegExp(text));
    expect(section("Contacts (oldest first):")).toEqual([
      line(`^ +${ids.george}  primary    george@hillvalley\\.edu  919191  created ${time}$`),
      line(`^ +${ids.biff}  secondary  biffsucks@hillvalley\\.edu  717171  created ${time}$`),
    ]);
    expect(section("History:")).toEqual([
      line(
        `^  ${time}  contact ${ids.george} was created as a new customer's primary, request req-george$`,
      ),
      line(
        `^  ${time}  contact ${ids.biff} was created as a new customer's primary, request req-biff$`,
      ),
      line(
        `^  ${time}  contact ${ids.biff} became secondary of ${ids.george} \\(it was a primary\\), request req-merge$`,
      ),
    ]);
  });
});

describe.skipIf(!postgresAvailable())("npm run explain", () => {
  const backend = postgresBackend();
  let ids: { george: number; biff: number };

  beforeAll(async () => {
    ids = await plantGeorgeAndBiff(await backend.open());
  });
  afterAll(() => backend.dispose());

  it("prints the customer and its history", async () => {
    const { stdout, code } = await runMain(
      "scripts/explain.ts",
      ["--email", " George@HillValley.edu "],
      { DATABASE_URL: backend.url() ?? "" },
    );
    expect(code).toBe(0);
    expect(stdout).toContain(`Customer ${ids.george} — 2 contact(s)`);
    expect(stdout).toContain(`contact ${ids.biff} became secondary of ${ids.george}`);
    expect(stdout).toContain("request req-merge");
  });
});
