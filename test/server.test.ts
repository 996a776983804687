/**
 * The node:http server behind `npm start`, over real sockets: routing, static files, and
 * keep-alive surviving every kind of rejected request. Runs on a PGlite database of its own.
 */

import { Agent, type IncomingHttpHeaders, request } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIdentifyServer, MAX_DISCARD_BYTES } from "../scripts/server.js";
import { serveFromPgliteCopy } from "./support/databases.js";

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
}

interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Whether the request went out on a socket an earlier request had used. */
  reusedSocket: boolean;
}

const server = createIdentifyServer();
let port = 0;

serveFromPgliteCopy();

beforeAll(async () => {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
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
}: Sent): Promise<Received> {
  return new Promise((resolve, reject) => {
    let received: Received | undefined;
    let closed = false;
    const settle = () => {
      if (received && closed) resolve(received);
    };
    const req = request(
      { host: "127.0.0.1", port, method, path, headers, agent: agent ?? false },
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
