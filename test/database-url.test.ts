/**
 * A database URL is parsed once, and what the checks read is what the connection uses: a
 * parameter named twice takes its last value for both (lib/db/database-url.ts). Proved on the
 * wire by a relay in front of the local PostgreSQL that records how each connection opens,
 * and against node-postgres's own parser, which reads the URL the drivers are given.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as pgParse } from "pg-connection-string";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../lib/config.js";
import type { Connection } from "../lib/db/client.js";
import { describeError } from "../lib/redact.js";
import { parsedUrl } from "./support/database-url.js";
import { ADMIN_URL, connect, postgresAvailable } from "./support/databases.js";

describe("a parameter named twice", () => {
  it.each([
    ["sslmode", "?sslmode=disable&sslmode=require", { sslmode: "require" }],
    ["host", "?host=db.example.com&host=127.0.0.1", { host: "127.0.0.1" }],
    ["port", "?port=6543&port=5433", { port: 5433 }],
    ["options", "?options=-c%20a%3D1&options=-c%20b%3D2", { options: "-c b=2" }],
  ])("takes the last %s, as libpq does", (_, query, expected) => {
    expect(parsedUrl(`postgres://app:pw@localhost/identify${query}`)).toMatchObject(expected);
  });

  it("leaves the drivers one of each parameter, the value the checks read", () => {
    const url = parsedUrl(
      "postgres://app:pw@localhost/identify?sslmode=disable&application_name=a&sslmode=require",
    );
    const params = new URL(url.href).searchParams;
    expect(params.getAll("sslmode")).toEqual(["require"]);
    expect(params.getAll("application_name")).toEqual(["a"]);
  });

  it("is refused on a Vercel deployment when its last sslmode may send in clear, naming the variable", () => {
    const env = {
      VERCEL: "1",
      VERCEL_ENV: "production",
      API_KEYS: "k3y-for-tests-0123456789",
      DATABASE_URL_UNPOOLED:
        "postgres://app:pw@db.example.com/identify?sslmode=require&sslmode=prefer",
    };
    expect(() => readConfig(env)).toThrow(
      /^Invalid environment: DATABASE_URL_UNPOOLED: .*sslmode=prefer/,
    );
  });
});

describe("what node-postgres reads from the URL the drivers are given", () => {
  let folder: string;
  let ca: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "identify-database-url-"));
    ca = join(folder, "ca.pem");
    // pg-connection-string reads the file; its content does not matter to the parse.
    await writeFile(ca, "not a certificate\n");
  });
  afterAll(() => rm(folder, { recursive: true, force: true }));

  it("is the host, port, sslmode, sslrootcert and options the checks read", () => {
    const urls = [
      "postgres://app:pw@db.example.com/identify?sslmode=disable&sslmode=verify-full",
      "postgres://app:pw@localhost:5433/identify?host=db.example.com&host=10.0.0.5&port=1&port=6543",
      "postgres://app:pw@db.example.com/identify?host=/var/run/postgresql&sslmode=prefer",
      "postgres://app:pw@[::1]/identify?options=-c%20x%3D1&options=-c%20search_path%3Dpublic",
      `postgres://app:pw@db.example.com/identify?sslrootcert=/nowhere&sslrootcert=${ca}&sslmode=require`,
      "postgres://app:pw@db.example.com/identify?host=&port=",
      "postgres:///identify",
    ];
    for (const written of urls) {
      const url = parsedUrl(written);
      const driver = pgParse(url.href);
      const read = {
        host: driver.host,
        port: Number(driver.port),
        sslmode: driver.sslmode ?? undefined,
        sslrootcert: driver.sslrootcert ?? undefined,
        options: driver.options ?? undefined,
      };
      expect(read, written).toEqual({
        host: url.host,
        port: url.port,
        sslmode: url.sslmode,
        sslrootcert: url.sslrootcert,
        options: url.options,
      });
    }
  });

  it("names the host and port, so PGHOST and PGPORT cannot move a URL that names none", () => {
    const url = parsedUrl("postgres:///identify");
    expect(url).toMatchObject({ host: "localhost", port: 5432 });
    expect(pgParse(url.href)).toMatchObject({ host: "localhost", port: "5432" });
  });
});

/** How a PostgreSQL connection opened: the first message the client sent. */
type Opening = "ssl-request" | "startup-in-clear" | "other";

/** An SSLRequest: length 8, then the request code 1234.5679. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

function opening(first: Buffer): Opening {
  if (first.subarray(0, 8).equals(SSL_REQUEST)) return "ssl-request";
  // A StartupMessage: a length, then protocol version 3.0; it carries the user in clear.
  if (first.length >= 8 && first.readUInt32BE(4) === 0x0003_0000) return "startup-in-clear";
  return "other";
}

describe.skipIf(!postgresAvailable())("a relay in front of PostgreSQL (which has no TLS)", () => {
  let relay: Server;
  const sockets: Socket[] = [];
  const openings: Opening[] = [];
  let relayUrl: URL;

  beforeAll(async () => {
    const server = new URL(ADMIN_URL);
    relay = createServer((client) => {
      const upstream = tcpConnect(Number(server.port || 5432), server.hostname);
      sockets.push(client, upstream);
      client.once("data", (first) => openings.push(opening(first)));
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const address = relay.address();
    if (typeof address !== "object" || address === null) throw new Error("no address");
    relayUrl = new URL(ADMIN_URL);
    relayUrl.host = `127.0.0.1:${address.port}`;
  });
  afterEach(() => {
    openings.length = 0;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => relay.close(resolve));
  });

  /** Opens the application's connection with `query` and runs `select 1`: "connected", or the error. */
  async function selectOne(query: string): Promise<string> {
    const url = new URL(relayUrl);
    url.search = query;
    let connection: Connection;
    try {
      connection = await connect({ DATABASE_URL: url.toString() });
    } catch (error) {
      return describeError(error);
    }
    try {
      await connection.db.execute("select 1");
      return "connected";
    } catch (error) {
      return describeError(error);
    } finally {
      await connection.close();
    }
  }

  it.each(["?sslmode=disable&sslmode=require", "?sslmode=prefer&sslmode=require"])(
    "%s asks for TLS and never sends its startup in clear",
    async (query) => {
      expect(await selectOne(query)).toMatch(/does not support SSL/);
      expect(openings.length).toBeGreaterThan(0);
      expect(openings.every((first) => first === "ssl-request")).toBe(true);
    },
  );

  it("?sslmode=require&sslmode=disable connects in clear, as its last sslmode says", async () => {
    expect(await selectOne("?sslmode=require&sslmode=disable")).toBe("connected");
    expect(openings).toEqual(["startup-in-clear"]);
  });
});
