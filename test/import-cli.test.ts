/**
 * The import command's refusals and failures before it reads a row: a --from it cannot use
 * is named, never echoed, and a source it cannot reach or log in to is reported without the
 * password of the URL, which is what an operator pastes into a ticket.
 */
import { once } from "node:events";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScratchDatabase, scratchDatabase } from "./support/databases.js";
import { runMain } from "./support/scripts.js";

/** One PostgreSQL protocol message: a type byte, then its length and body. */
function message(type: string, body: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([Buffer.from(type), length, body]);
}

/** The code of an SSLRequest, which a client may send before its startup message. */
const SSL_REQUEST_CODE = 80877103;

/**
 * A server that speaks just enough of the PostgreSQL protocol to ask for a cleartext password
 * and refuse it, as a real server refuses a wrong one (SQLSTATE 28P01). The local test server
 * trusts every connection, so it cannot be made to refuse a password. Records the passwords
 * it received, to show the client did send the one the output must not show.
 */
function refusingServer(): { server: Server; passwords: string[] } {
  const passwords: string[] = [];
  const server = createServer((socket) => {
    let startup = true;
    socket.on("data", (data) => {
      if (startup && data.length === 8 && data.readInt32BE(4) === SSL_REQUEST_CODE) {
        socket.write("N"); // no TLS here; the client goes on in plaintext, or reconnects
        return;
      }
      if (startup) {
        startup = false;
        const cleartext = Buffer.alloc(4);
        cleartext.writeInt32BE(3);
        socket.write(message("R", cleartext));
        return;
      }
      if (data.subarray(0, 1).toString() === "p") {
        passwords.push(data.subarray(5, data.length - 1).toString());
        const fields = [
          "SFATAL",
          "VFATAL",
          "C28P01",
          'Mpassword authentication failed for user "legacy"',
        ];
        const body = Buffer.from(`${fields.join("\0")}\0\0`);
        socket.end(message("E", body));
      }
    });
    socket.on("error", () => {});
  });
  return { server, passwords };
}

describe("npm run import", () => {
  // The target is incidental: these fail before a row is read. A copy of the migrated
  // template, on PostgreSQL where it runs (opening the embedded database costs a second).
  let target: ScratchDatabase;
  beforeAll(async () => {
    target = await scratchDatabase();
  });
  afterAll(() => target?.remove());

  it("refuses a --from that is not a postgres:// URL without printing it, since it may hold a password", async () => {
    const result = await runMain(
      "scripts/import.ts",
      ["--from", "mysql://u:hunter2-secret@h/db"],
      {},
    );
    expect(result.code).toBe(1);
    expect(result.output).toContain("--from must be a postgres:// URL; it is a mysql:// URL.");
    expect(result.output).not.toContain("hunter2-secret");
  });

  it("reports a source that refuses connections without printing the URL's password", async () => {
    // Port 1 on loopback: nothing listens there.
    const result = await runMain(
      "scripts/import.ts",
      ["--from", "postgres://legacy:hunter2-secret@127.0.0.1:1/legacy"],
      target.env,
    );
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/Import failed; nothing was imported: .*ECONNREFUSED/);
    expect(result.output).not.toContain("hunter2");
  });

  describe("against a source that refuses the password", () => {
    const { server, passwords } = refusingServer();
    beforeAll(async () => {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
    });
    afterAll(() => {
      server.close();
    });

    it("says the password was refused, and prints no password", async () => {
      const { port } = server.address() as AddressInfo;
      const result = await runMain(
        "scripts/import.ts",
        ["--from", `postgres://legacy:hunter2-secret@127.0.0.1:${port}/legacy`],
        target.env,
      );
      expect(passwords).toEqual(["hunter2-secret"]);
      expect(result.code).toBe(1);
      expect(result.output).toContain(
        'Import failed; nothing was imported: password authentication failed for user "legacy" (SQLSTATE 28P01)',
      );
      expect(result.output).not.toContain("hunter2");
    });
  });
});
