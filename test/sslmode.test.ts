/**
 * sslmode as libpq means it, on real servers: the local PostgreSQL (no TLS, as many
 * self-hosted servers run), and PgBouncer in front of it speaking TLS to its clients, either
 * offering it (client_tls_sslmode=allow) or insisting on it (require). Through PgBouncer,
 * pg_stat_ssl only sees the pooler's own leg, so TLS on the client's leg shows as the pooler
 * refusing plaintext, or in its admin console (SHOW CLIENTS).
 *
 * `require` against the TLS-less server (refused, naming SSL) is in drivers.test.ts.
 */
import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../lib/db/client.js";
import { parseDatabaseUrl } from "../lib/db/database-url.js";
import { settleSslMode } from "../lib/db/sslmode.js";
import { toErrorResponse } from "../lib/errors.js";
import { describeError } from "../lib/redact.js";
import { parsedUrl } from "./support/database-url.js";
import { ADMIN_URL, connect, postgresAvailable } from "./support/databases.js";
import { type Pgbouncer, pgbouncerAvailable, startPgbouncer } from "./support/pgbouncer.js";

/** `url` with each query parameter set to its value, or removed for `undefined`. */
const withParams = (url: string, params: Record<string, string | undefined>) => {
  const address = new URL(url);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) address.searchParams.delete(key);
    else address.searchParams.set(key, value);
  }
  return address.toString();
};

/** Runs `work` on a connection opened as the application opens it, then closes it. */
async function withConnection<T>(
  url: string,
  work: (connection: Connection) => Promise<T>,
): Promise<T> {
  const connection = await connect({ DATABASE_URL: url });
  try {
    return await work(connection);
  } finally {
    await connection.close();
  }
}

/** Whether the backend serving this connection came over TLS (PostgreSQL itself only). */
const backendUsesTls = (connection: Connection) =>
  connection.db
    .execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    .then((result) => (result as unknown as { rows: { ssl: boolean }[] }).rows[0]?.ssl);

/** Answers `select 1`, or throws what opening or querying threw. */
const selectOne = (url: string) =>
  withConnection(url, async (connection) => {
    await connection.db.execute("select 1");
    return "connected";
  });

/** The error opening `url` and querying through it fails with. */
const failureOf = (url: string) =>
  selectOne(url).then(
    () => {
      throw new Error(`connected to ${url}, which should have failed`);
    },
    (error: unknown) => error,
  );

describe.skipIf(!postgresAvailable())("sslmode against PostgreSQL without TLS", () => {
  it("prefer connects in plaintext", async () => {
    const url = withParams(ADMIN_URL, { sslmode: "prefer" });
    expect(await withConnection(url, backendUsesTls)).toBe(false);
  });

  it("a URL without sslmode connects in plaintext, as libpq's default prefer does", async () => {
    const url = withParams(ADMIN_URL, { sslmode: undefined });
    expect(await withConnection(url, backendUsesTls)).toBe(false);
  });

  it("allow connects in plaintext", async () => {
    const url = withParams(ADMIN_URL, { sslmode: "allow" });
    expect(await withConnection(url, backendUsesTls)).toBe(false);
  });

  it("prefer asks the host and port that ?host= and ?port= name, as node-postgres connects", async () => {
    const { hostname, port } = new URL(ADMIN_URL);
    // Nothing listens on port 1: asking the URL's own address would be refused.
    const address = new URL(withParams(ADMIN_URL, { host: hostname, port: port || "5432" }));
    address.hostname = "192.0.2.1";
    address.port = "1";
    expect(await withConnection(address.toString(), backendUsesTls)).toBe(false);
  });

  const socket = "/var/run/postgresql/.s.PGSQL.5432";
  it.skipIf(!existsSync(socket))(
    "prefer over a Unix socket connects in plaintext, since libpq has no TLS there",
    async () => {
      const url = withParams(ADMIN_URL, { sslmode: "prefer", host: "/var/run/postgresql" });
      expect(await withConnection(url, backendUsesTls)).toBe(false);
    },
  );
});

describe("sslmode before any connection", () => {
  let silent: Server;
  const held: Socket[] = [];
  let silentUrl: string;

  beforeAll(async () => {
    // Accepts connections and never says a word, like a host behind a black-holing firewall
    // would once the TCP handshake is done.
    silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const address = silent.address();
    if (typeof address !== "object" || address === null) throw new Error("no address");
    silentUrl = `postgres://postgres@127.0.0.1:${address.port}/identify`;
  });
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("prefer gives up on a server that never answers after DB_CONNECT_TIMEOUT_MS, as unavailable", async () => {
    const error = await connect({ DATABASE_URL: silentUrl, DB_CONNECT_TIMEOUT_MS: "200" }).then(
      () => undefined,
      (failed: unknown) => failed,
    );
    expect(describeError(error)).toMatch(/DB_CONNECT_TIMEOUT_MS \(200 ms\)/);
    expect(toErrorResponse(error, "r1").response.status).toBe(503);
  });

  it("leaves a URL with node-postgres's own ssl parameter and no sslmode to node-postgres", async () => {
    const url = parsedUrl(withParams(silentUrl, { ssl: "true" }));
    expect(await settleSslMode(url, 200)).toBe(url.href);
  });

  it("never sees an sslmode that is not one of libpq's: the URL's parse refuses it, listing them", () => {
    expect(parseDatabaseUrl("DATABASE_URL", withParams(silentUrl, { sslmode: "no-verify" }))).toBe(
      "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full",
    );
  });
});

describe.skipIf(!postgresAvailable() || !pgbouncerAvailable())(
  "sslmode against a pooler that requires TLS",
  () => {
    let pooler: Pgbouncer;
    beforeAll(async () => {
      pooler = await startPgbouncer(ADMIN_URL, { clientTls: "require" });
    });
    afterAll(() => pooler?.stop());

    const pooled = (sslmode: string | undefined) =>
      withParams(pooler.pooled(ADMIN_URL), { sslmode });

    it("disable is refused, the pooler saying SSL is required", async () => {
      expect(describeError(await failureOf(pooled("disable")))).toMatch(/SSL required/);
    });

    it("prefer connects, so over TLS", async () => {
      expect(await selectOne(pooled("prefer"))).toBe("connected");
    });

    it("a URL without sslmode connects, so over TLS", async () => {
      expect(await selectOne(pooled(undefined))).toBe("connected");
    });

    it("allow falls back to TLS when the pooler refuses plaintext", async () => {
      expect(await selectOne(pooled("allow"))).toBe("connected");
    });
  },
);

describe.skipIf(!postgresAvailable() || !pgbouncerAvailable())(
  "sslmode against a pooler that offers TLS and accepts plaintext",
  () => {
    let pooler: Pgbouncer;
    beforeAll(async () => {
      pooler = await startPgbouncer(ADMIN_URL, { clientTls: "allow" });
    });
    afterAll(() => pooler?.stop());

    /** The TLS the pooler reports for a connection opened with `sslmode`: "" is plaintext. */
    const clientTls = (sslmode: string | undefined, name: string) =>
      withConnection(
        withParams(pooler.pooled(ADMIN_URL), { sslmode, application_name: name }),
        async (connection) => {
          // The pool keeps this client connected, idle, while the console is asked.
          await connection.db.execute("select 1");
          const mine = (await pooler.clients()).filter((c) => c.application_name === name);
          expect(mine).toHaveLength(1);
          return mine[0]?.tls;
        },
      );

    it("prefer connects over TLS", async () => {
      expect(await clientTls("prefer", "sslmode-prefer")).toMatch(/^TLS/);
    });

    it("a URL without sslmode connects over TLS", async () => {
      expect(await clientTls(undefined, "sslmode-missing")).toMatch(/^TLS/);
    });

    it("allow connects in plaintext", async () => {
      expect(await clientTls("allow", "sslmode-allow")).toBe("");
    });

    it("disable connects in plaintext", async () => {
      expect(await clientTls("disable", "sslmode-disable")).toBe("");
    });

    it("require connects over TLS without checking the self-signed certificate", async () => {
      expect(await clientTls("require", "sslmode-require")).toMatch(/^TLS/);
    });
  },
);
