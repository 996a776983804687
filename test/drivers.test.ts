/**
 * Which driver a configuration picks, and the guards on the developer WebSocket proxy that
 * lets the Neon driver reach a non-Neon server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { readConfig } from "../lib/config.js";
import { driverFor } from "../lib/db/client.js";
import { describeError } from "../lib/redact.js";
import { type NeonWsProxy, startNeonWsProxy } from "../scripts/neon-ws-proxy.js";
import { ADMIN_URL, connect, postgresAvailable } from "./support/databases.js";

describe("driver choice", () => {
  it("uses the embedded database when no DATABASE_URL is set", () => {
    expect(driverFor(readConfig({}))).toBe("pglite");
  });

  it("uses the Neon driver for a Neon host", () => {
    const url = "postgres://u:p@ep-quiet-tree-123456-pooler.us-east-2.aws.neon.tech/neondb";
    expect(driverFor(readConfig({ DATABASE_URL: url }))).toBe("neon");
  });

  it("uses node-postgres for any other host, so sslmode means what the URL says", () => {
    const url = "postgres://u:p@db.example.com:5432/app?sslmode=require";
    expect(driverFor(readConfig({ DATABASE_URL: url }))).toBe("node-postgres");
  });

  it("uses the Neon driver for any host when NEON_WS_PROXY names a proxy", () => {
    const config = readConfig({
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/app",
      NEON_WS_PROXY: "ws://127.0.0.1:4444/v2",
    });
    expect(driverFor(config)).toBe("neon");
  });

  it("refuses an unencrypted NEON_WS_PROXY that leaves the machine", () => {
    expect(() => readConfig({ NEON_WS_PROXY: "ws://proxy.example.com/v2" })).toThrow(
      /NEON_WS_PROXY with ws:\/\/ \(unencrypted\) must be a loopback address/,
    );
  });
});

describe("the developer WebSocket proxy", () => {
  let proxy: NeonWsProxy;
  beforeAll(async () => {
    proxy = await startNeonWsProxy({ allow: ["127.0.0.1:5432"] });
  });
  afterAll(() => proxy.close());

  /** Opens a WebSocket and reports how the handshake ended. */
  const handshake = (url: string, headers: Record<string, string> = {}) =>
    new Promise<string>((resolve) => {
      const socket = new WebSocket(url, { headers });
      socket.once("open", () => {
        socket.terminate();
        resolve("open");
      });
      socket.once("unexpected-response", (_request, response) => {
        resolve(`refused ${response.statusCode}`);
        socket.terminate();
      });
      socket.once("error", () => resolve("error"));
    });

  it("listens on loopback only", () => {
    // The socket's own address, not the printed URL: 0.0.0.0 or :: would serve the network.
    expect(proxy.address()).toMatchObject({ address: "127.0.0.1", family: "IPv4" });
  });

  it("accepts the URL it printed, token included", async () => {
    expect(await handshake(`${proxy.url}&address=127.0.0.1:5432`)).toBe("open");
  });

  it("refuses a connection without its token", async () => {
    const url = new URL(proxy.url);
    url.searchParams.delete("token");
    expect(await handshake(`${url}?address=127.0.0.1:5432`)).toBe("refused 401");
  });

  it("refuses a connection from a web page, which always sends an Origin", async () => {
    const result = await handshake(`${proxy.url}&address=127.0.0.1:5432`, {
      Origin: "https://attacker.example",
    });
    expect(result).toBe("refused 401");
  });
});

describe.skipIf(!postgresAvailable())("TLS as the URL says", () => {
  /** The local test server runs without SSL, as many self-hosted ones do. */
  const withSslMode = (mode: string) => {
    const url = new URL(ADMIN_URL);
    url.searchParams.set("sslmode", mode);
    return url.toString();
  };

  it("refuses to connect with sslmode=require to a server without SSL, naming SSL", async () => {
    const connection = await connect({ DATABASE_URL: withSslMode("require") });
    try {
      const error = await connection.db.execute("select 1").then(
        () => undefined,
        (failed: unknown) => failed,
      );
      expect(describeError(error)).toMatch(/The server does not support SSL connections/);
    } finally {
      await connection.close();
    }
  });

  it("connects in clear only when the URL allows it", async () => {
    const connection = await connect({ DATABASE_URL: withSslMode("disable") });
    try {
      const result = (await connection.db.execute(
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
      )) as unknown as { rows: { ssl: boolean }[] };
      expect(result.rows).toEqual([{ ssl: false }]);
    } finally {
      await connection.close();
    }
  });
});
