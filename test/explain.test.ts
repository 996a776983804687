/** `npm run explain`: the customer and its story, from the audit trail. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { describeEvent, explainCustomer, formatExplanation } from "../lib/explain.js";
import { identify } from "../lib/identify.js";
import { clonePglite, connect, type PgliteFolder } from "./support/databases.js";
import { runScript } from "./support/scripts.js";

describe("explaining a customer", () => {
  let folder: PgliteFolder;
  let connection: Connection;
  const ids = { george: 0, biff: 0 };

  beforeAll(async () => {
    folder = await clonePglite();
    connection = await connect({ PGLITE_DIR: folder.dir });
    const send = (email: string, phoneNumber: string, requestId: string) =>
      identify(connection.db, { email, phoneNumber }, { lockTimeoutMs: 5000, requestId });
    ids.george = (
      await send("george@hillvalley.edu", "919191", "req-george")
    ).customer.primaryContactId;
    ids.biff = (
      await send("biffsucks@hillvalley.edu", "717171", "req-biff")
    ).customer.primaryContactId;
    await send("george@hillvalley.edu", "717171", "req-merge");
  });
  afterAll(async () => {
    await connection?.close();
    await folder?.remove();
  });

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

  it("prints the customer and its history from the command line", async () => {
    // The embedded database admits one process at a time.
    await connection.close();
    try {
      const { stdout, code } = await runScript(
        "scripts/explain.ts",
        ["--email", " George@HillValley.edu "],
        { PGLITE_DIR: folder.dir },
      );
      expect(code).toBe(0);
      expect(stdout).toContain(`Customer ${ids.george} — 2 contact(s)`);
      expect(stdout).toContain(`contact ${ids.biff} became secondary of ${ids.george}`);
      expect(stdout).toContain("request req-merge");
    } finally {
      connection = await connect({ PGLITE_DIR: folder.dir });
    }
  });

  it("formats an explanation with contacts, shared values and history", async () => {
    const explanation = await explainCustomer(connection.db, { email: "george@hillvalley.edu" });
    const text = explanation ? formatExplanation(explanation) : "";
    expect(text).toMatch(/Contacts \(oldest first\):/);
    expect(text).toMatch(/History:/);
  });
});
