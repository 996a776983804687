/**
 * The node:http server behind `npm start`, over real sockets: routing, static files, the
 * Host names it answers to, keep-alive surviving every kind of rejected request, a client
 * leaving mid-body, and closing. The database is incidental here: a scratchDatabase.
 */
import { once } from "node:events";
import {
  Agent,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
} from "node:http";
import { type AddressInfo, connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  createIdentifyServer,
  type IdentifyServerOptions,
  MAX_DISCARD_BYTES,
} from "../scripts/server.js";
import { serveScratchDatabase } from "./support/databases.js";

interface Sent {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** Written in one go. */
  body?: string | Buffer;
  /**
   * Written one write() at a time, a millisecond apart, without a Content-Length: a chunked
   * body that is still arriving when the server decides on it.
   */
  chunks?: readonly Buffer[];
  agent?: Agent;
  /** Another server's port; default the one all tests share. */
  port?: number;
}

interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Whether the request went out on a socket an earlier request had used. */
  reusedSocket: boolean;
}

/** A server for `options`, listening on a free loopback port. */
async function listening(
  options?: IdentifyServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createIdentifyServer(options);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port };
}

/** Runs `test` against a server of its own, closed afterwards. */
async function withServer(
  options: IdentifyServerOptions,
  test: (port: number) => Promise<void>,
): Promise<void> {
  const other = await listening(options);
  try {
    await test(other.port);
  } finally {
    other.server.close();
  }
}

let server: Server;
let port = 0;

serveScratchDatabase();

beforeAll(async () => {
  ({ server, port } = await listening());
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/**
 * One HTTP/1.1 exchange with node:http; the path is sent exactly as given. Settles once the
 * response has ended and the request has closed, which on a keep-alive agent is when its
 * socket is back in the pool: the next request on that agent then reuses it, and
 * `reusedSocket` says so (a request queued while the socket is busy reads false even when
 * it later gets that same socket).
 */
function send({
  method = "GET",
  path,
  headers = {},
  body,
  chunks,
  agent,
  port: to = port,
}: Sent): Promise<Received> {
  return new Promise((resolve, reject) => {
    let received: Received | undefined;
    let closed = false;
    const settle = () => {
      if (received && closed) resolve(received);
    };
    const req = request(
      { host: "127.0.0.1", port: to, method, path, headers, agent: agent ?? false },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (part: Buffer) => parts.push(part));
        res.on("error", reject);
        res.on("end", () => {
          received = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(parts).toString("utf8"),
            reusedSocket: req.reusedSocket,
          };
          settle();
        });
      },
    );
    req.on("error", (error) => {
      // Once the whole response is in, a failed write only means the server has stopped
      // reading the rest of a body it refused (and said Connection: close).
      if (!received) return reject(error);
      closed = true;
      settle();
    });
    req.on("close", () => {
      closed = true;
      settle();
    });
    void (async () => {
      for (const chunk of chunks ?? []) {
        req.write(chunk);
        await sleep(1);
      }
      req.end(body);
    })();
  });
}

const postJson = (path: string, payload: unknown, agent?: Agent) =>
  send({
    method: "POST",
    path,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
    ...(agent ? { agent } : {}),
  });

describe("routes", () => {
  it("answers /identify/ and /api/identify/ like the paths without the slash, as the deployment routes them", async () => {
    const payload = { email: "slash@example.com" };
    const plain = await postJson("/identify", payload);
    for (const path of ["/identify/", "/api/identify/"]) {
      const slashed = await postJson(path, payload);
      expect(slashed.status, path).toBe(200);
      expect(slashed.text, path).toBe(plain.text);
    }
  });

  it("serves POST /identify and POST /api/identify with the same contract", async () => {
    const payload = { email: "routes@example.com", phoneNumber: "5550100" };
    const first = await postJson("/identify", payload);
    const second = await postJson("/api/identify", payload);

    for (const response of [first, second]) {
      expect(response.status).toBe(200);
      expect(response.headers["content-type"]).toMatch(/^application\/json/);
    }
    const a = JSON.parse(first.text) as { contact: { primaryContactId: number } };
    const b = JSON.parse(second.text) as { contact: { primaryContactId: number } };
    expect(a.contact.primaryContactId).toEqual(expect.any(Number));
    expect(b).toEqual(a);
  });

  it("serves GET /identify/changes and its /api form, with or without a trailing slash, from the one handler", async () => {
    await postJson("/identify", { email: "feed@example.com" });
    const pages = [];
    for (const path of [
      "/identify/changes",
      "/identify/changes/",
      "/api/identify/changes",
      "/api/identify/changes/",
    ]) {
      const response = await send({ path: `${path}?limit=1000` });
      expect(response.status, path).toBe(200);
      expect(response.headers["content-type"], path).toMatch(/^application\/json/);
      pages.push(JSON.parse(response.text));
    }
    expect(pages[0].changes.length).toBeGreaterThan(0);
    for (const page of pages) expect(page).toEqual(pages[0]);
  });

  it("serves public/index.html at GET / with text/html", async () => {
    const response = await send({ path: "/" });
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/html/);
    expect(response.text).toMatch(/^<!doctype html>/i);
  });

  it("answers 404 JSON for unknown paths and never serves files outside public/", async () => {
    for (const path of [
      "/nope",
      "/../package.json",
      "/%2e%2e/package.json",
      "/..%2fpackage.json",
      "/%2e%2e%2f%2e%2e%2fpackage.json",
    ]) {
      const response = await send({ path });
      expect(response.status, path).toBe(404);
      expect(response.headers["content-type"], path).toMatch(/^application\/json/);
      expect(JSON.parse(response.text), path).toMatchObject({ error: { code: "not_found" } });
      expect(response.text, path).not.toContain('"devDependencies"');
    }
  });
});

describe("keep-alive", () => {
  const OVER_LIMIT = 100 * 1024;
  const rejections: ReadonlyArray<{ name: string; status: number; sent: Omit<Sent, "agent"> }> = [
    {
      name: "413 with a declared Content-Length, body sent",
      status: 413,
      sent: {
        method: "POST",
        path: "/identify",
        headers: { "Content-Type": "application/json", "Content-Length": OVER_LIMIT },
        body: Buffer.alloc(OVER_LIMIT, " "),
      },
    },
    {
      name: "413 with a chunked body that grows past the limit",
      status: 413,
      sent: {
        method: "POST",
        path: "/identify",
        headers: { "Content-Type": "application/json" },
        chunks: Array.from({ length: 25 }, () => Buffer.alloc(4 * 1024, " ")),
      },
    },
    {
      name: "415 for a text/plain body",
      status: 415,
      sent: {
        method: "POST",
        path: "/identify",
        headers: { "Content-Type": "text/plain" },
        body: "email=doc@example.com",
      },
    },
    {
      name: "400 for invalid JSON",
      status: 400,
      sent: {
        method: "POST",
        path: "/identify",
        headers: { "Content-Type": "application/json" },
        body: '{"email": ',
      },
    },
    { name: "405 for GET", status: 405, sent: { method: "GET", path: "/identify" } },
  ];

  it("A rejected request never breaks the client's keep-alive connection for the next one.", async () => {
    for (const [index, { name, status, sent }] of rejections.entries()) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const rejected = await send({ ...sent, agent });
        expect(rejected.status, name).toBe(status);
        expect(rejected.headers.connection, name).not.toBe("close");

        const next = await postJson("/identify", { email: `keepalive${index}@example.com` }, agent);
        expect(next.status, name).toBe(200);
        expect(next.reusedSocket, name).toBe(true);
      } finally {
        agent.destroy();
      }
    }
  });

  it("A rejected body too long to discard closes its connection, and the response says so.", async () => {
    const tooLong = MAX_DISCARD_BYTES + 64 * 1024;
    const cases: ReadonlyArray<{ name: string; sent: Omit<Sent, "agent"> }> = [
      {
        name: "declared Content-Length",
        sent: {
          method: "POST",
          path: "/identify",
          headers: { "Content-Type": "application/json", "Content-Length": tooLong },
          body: Buffer.alloc(tooLong, " "),
        },
      },
      {
        name: "chunked",
        sent: {
          method: "POST",
          path: "/identify",
          headers: { "Content-Type": "application/json" },
          chunks: Array.from({ length: tooLong / (16 * 1024) }, () => Buffer.alloc(16 * 1024, " ")),
        },
      },
    ];
    for (const [index, { name, sent }] of cases.entries()) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const rejected = await send({ ...sent, agent });
        expect(rejected.status, name).toBe(413);
        expect(rejected.headers.connection, name).toBe("close");

        const next = await postJson("/identify", { email: `fresh${index}@example.com` }, agent);
        expect(next.status, name).toBe(200);
        expect(next.reusedSocket, name).toBe(false);
      } finally {
        agent.destroy();
      }
    }
  });
});

describe("Host names", () => {
  it("answers 421 JSON to a Host name it does not serve, as a DNS-rebinding page sends", async () => {
    const response = await send({
      method: "POST",
      path: "/identify",
      headers: { Host: "rebound.attacker.example", "Content-Type": "application/json" },
      body: JSON.stringify({ email: "rebinding@example.com" }),
    });
    expect(response.status).toBe(421);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: "misdirected_request" } });
  });

  it.each(["localhost", "localhost:3000", "LocalHost", "127.0.0.1:8080", "[::1]", "[::1]:3000"])(
    "serves the loopback Host %s, with or without a port",
    async (host) => {
      expect((await send({ path: "/", headers: { Host: host } })).status).toBe(200);
    },
  );

  it("serves the Host names given in allowedHosts, and no longer the loopback ones", async () => {
    await withServer({ allowedHosts: ["identify.example"] }, async (other) => {
      const named = await send({
        path: "/",
        port: other,
        headers: { Host: "identify.example:80" },
      });
      const loopback = await send({ path: "/", port: other, headers: { Host: "localhost" } });
      expect(named.status).toBe(200);
      expect(loopback.status).toBe(421);
    });
  });

  it("serves any Host name with allowedHosts *", async () => {
    await withServer({ allowedHosts: ["*"] }, async (other) => {
      const response = await send({ path: "/", port: other, headers: { Host: "any.example" } });
      expect(response.status).toBe(200);
    });
  });
});

describe("a client that goes away", () => {
  it("is logged as client_closed with 499 when it leaves mid-body, not as a database outage", async () => {
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    const failed = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const socket = connect(port, "127.0.0.1");
      await once(socket, "connect");
      socket.write(
        "POST /identify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
          'Content-Length: 100\r\n\r\n{"email":',
      );
      socket.destroy();
      const lines = () => logged.mock.calls.map((call) => JSON.parse(String(call[0])) as object);
      await vi.waitFor(() => expect(lines()).not.toEqual([]), { timeout: 10_000 });
      expect(lines()).toEqual([
        expect.objectContaining({ status: 499, outcome: "client_closed", code: "client_closed" }),
      ]);
      expect(failed).not.toHaveBeenCalled();
    } finally {
      logged.mockRestore();
      failed.mockRestore();
    }
  });
});

describe("closing", () => {
  it("A server asked to close answers the request in flight, then ends its connection.", async () => {
    const closing = await listening();
    const agent = new Agent({ keepAlive: true });
    try {
      const body = JSON.stringify({ email: "closing@example.com" });
      const req = request({
        host: "127.0.0.1",
        port: closing.port,
        method: "POST",
        path: "/identify",
        headers: { "Content-Type": "application/json", "Content-Length": body.length },
        agent,
      });
      const answered = once(req, "response");
      req.write(body.slice(0, 5));
      // The request is in flight once the server has its head; then it is asked to close.
      await once(closing.server, "request");
      const closed = new Promise((resolve) => closing.server.close(resolve));
      req.end(body.slice(5));

      const [response] = (await answered) as [IncomingMessage];
      response.resume();
      expect(response.statusCode).toBe(200);
      expect(response.headers.connection).toBe("close");
      // No keep-alive connection is left for close() to wait on.
      await closed;
    } finally {
      agent.destroy();
    }
  });
});
