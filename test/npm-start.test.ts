/**
 * The real `npm start` in a child process: driven with raw bytes over TCP, no request,
 * however malformed, stops it, and every error answer with a body is the product's JSON
 * error; it refuses to start on a bad setting, naming it; SIGTERM stops it cleanly.
 */
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clonePglite,
  connect as connectDatabase,
  type ScratchDatabase,
  scratchDatabase,
} from "./support/databases.js";
import { type Service, spawnService } from "./support/service.js";

/**
 * Starting a process and opening the embedded database take seconds on a busy machine.
 * Each service opens a copy of a migrated database (a scratchDatabase where the embedded
 * one is not the subject): an empty one would spend seconds applying every migration.
 */
const SPAWN_TEST_TIMEOUT_MS = 120_000;

/** What the server sent back on one connection before closing it. */
interface Answer {
  /** 0 when the server closed the connection without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Writes `bytes` on a new connection and reads until the server closes it. `after` is what
 * the client does after writing: keep the connection open ("wait"), stop sending ("end",
 * a half-close), or go away at once ("destroy", resolving with no answer).
 */
function exchange(
  port: number,
  bytes: string,
  after: "wait" | "end" | "destroy" = "wait",
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(bytes, "latin1");
      if (after === "end") socket.end();
      if (after === "destroy") socket.destroy();
    });
    socket.on("data", (part: Buffer) => parts.push(part));
    // A reset after (or instead of) the answer only means the server dropped the connection.
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "ECONNRESET" && error.code !== "EPIPE") reject(error);
    });
    socket.on("close", () => resolve(parseAnswer(Buffer.concat(parts).toString("latin1"))));
  });
}

function parseAnswer(raw: string): Answer {
  if (raw === "") return { status: 0, headers: {}, body: "" };
  const headEnd = raw.indexOf("\r\n\r\n");
  const [statusLine = "", ...fields] = raw.slice(0, headEnd).split("\r\n");
  const headers = Object.fromEntries(
    fields.map((field) => {
      const colon = field.indexOf(":");
      return [field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim()];
    }),
  );
  const rest = raw.slice(headEnd + 4);
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: headers["transfer-encoding"] === "chunked" ? dechunk(rest) : rest,
  };
}

function dechunk(chunked: string): string {
  let body = "";
  let rest = chunked;
  for (;;) {
    const lineEnd = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!size) return body;
    body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 4 + size);
  }
}

const json = '{"email":"raw@example.com"}';
const post = (target: string, headers: string, body = json) =>
  `POST ${target} HTTP/1.1\r\n${headers}Content-Type: application/json\r\n` +
  `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
const get = (method: string, target: string, host = "Host: localhost\r\n") =>
  `${method} ${target} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`;
const HOST = "Host: localhost\r\n";
/** A JSON POST to /identify whose framing (length or chunks, then the body) is `rest`. */
const framed = (rest: string) =>
  `POST /identify HTTP/1.1\r\n${HOST}Content-Type: application/json\r\n${rest}`;

/**
 * Malformed requests and what each gets. Node's own parser refuses what is not HTTP with a
 * bodyless 400 (431 for oversized headers) and closes; everything it lets through is
 * answered by the service in JSON; 0 is no answer at all (the client left).
 */
const cases: ReadonlyArray<{
  name: string;
  bytes: string;
  after?: "end" | "destroy";
  status: number;
}> = [
  { name: "TRACE /identify", bytes: get("TRACE", "/identify"), status: 405 },
  { name: "TRACE /", bytes: get("TRACE", "/"), status: 404 },
  { name: "TRACK /identify", bytes: get("TRACK", "/identify"), status: 400 },
  { name: "CONNECT", bytes: get("CONNECT", "localhost:80", "Host: localhost:80\r\n"), status: 0 },
  { name: "GET /%", bytes: get("GET", "/%"), status: 400 },
  { name: "GET /%ff.json", bytes: get("GET", "/%ff.json"), status: 400 },
  { name: "HEAD /%E0%A4%A.html", bytes: get("HEAD", "/%E0%A4%A.html"), status: 400 },
  { name: "GET /index.html%E0", bytes: get("GET", "/index.html%E0"), status: 400 },
  { name: "POST /identify%zz", bytes: post("/identify%zz", HOST), status: 400 },
  { name: "POST /api/identify%", bytes: post("/api/identify%", HOST), status: 400 },
  {
    name: "POST /identify?x=%zz (the query is not read)",
    bytes: post("/identify?x=%zz", HOST),
    status: 200,
  },
  { name: "GET http://x/%zz (absolute-form)", bytes: get("GET", "http://x/%zz"), status: 421 },
  { name: "GET http://localhost/%zz", bytes: get("GET", "http://localhost/%zz"), status: 400 },
  {
    name: "GET http://localhost:99999/",
    bytes: get("GET", "http://localhost:99999/"),
    status: 400,
  },
  {
    name: "POST http://localhost/identify",
    bytes: post("http://localhost/identify", HOST),
    status: 200,
  },
  { name: "GET not-a-url", bytes: get("GET", "not-a-url"), status: 400 },
  { name: "OPTIONS *", bytes: get("OPTIONS", "*"), status: 404 },
  { name: "no Host", bytes: get("GET", "/", ""), status: 400 },
  { name: "no Host over HTTP/1.0", bytes: "GET /identify HTTP/1.0\r\n\r\n", status: 405 },
  { name: "Host: [::1", bytes: get("GET", "/", "Host: [::1\r\n"), status: 421 },
  { name: "Host: x:99999", bytes: get("GET", "/", "Host: x:99999\r\n"), status: 400 },
  {
    name: "Host: localhost:99999 on /identify",
    bytes: post("/identify", "Host: localhost:99999\r\n"),
    status: 400,
  },
  { name: "Host: evil.example", bytes: post("/identify", "Host: evil.example\r\n"), status: 421 },
  {
    name: "Content-Length: abc",
    bytes: framed("Content-Length: abc\r\n\r\n{}"),
    status: 400,
  },
  {
    name: "Content-Length: -1",
    bytes: framed("Content-Length: -1\r\n\r\n{}"),
    status: 400,
  },
  {
    name: "two different Content-Lengths",
    bytes: framed("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
    status: 400,
  },
  {
    name: "a Content-Length past 2^64",
    bytes: framed("Content-Length: 99999999999999999999\r\n\r\n{}"),
    status: 400,
  },
  {
    name: "Content-Length and chunked at once",
    bytes: framed("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
    status: 400,
  },
  {
    name: "a chunk shorter than its size says",
    bytes: framed("Transfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n"),
    status: 400,
  },
  {
    name: "a chunk size that is not hexadecimal",
    bytes: framed("Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    status: 400,
  },
  {
    name: "a chunked body cut off by a half-close",
    bytes: framed('Transfer-Encoding: chunked\r\n\r\n10\r\n{"em'),
    after: "end",
    status: 400,
  },
  {
    name: "a body shorter than its Content-Length, then a half-close",
    bytes: framed('Content-Length: 100\r\n\r\n{"email":'),
    after: "end",
    status: 400,
  },
  {
    name: "a body shorter than its Content-Length, then a reset",
    bytes: framed('Content-Length: 100\r\n\r\n{"email":'),
    after: "destroy",
    status: 0,
  },
  {
    name: "20 KB of headers",
    bytes: `GET / HTTP/1.1\r\n${HOST}X-Padding: ${"x".repeat(20_000)}\r\n\r\n`,
    status: 431,
  },
  { name: "bytes that are not HTTP", bytes: "\u0000\u0001 hello\r\n\r\n", status: 400 },
];

describe("npm start, sent malformed requests as raw bytes", () => {
  let service: Service;
  let database: ScratchDatabase;
  let port = 0;

  beforeAll(async () => {
    database = await scratchDatabase();
    service = spawnService(database.env);
    port = await service.listening;
  }, SPAWN_TEST_TIMEOUT_MS);
  afterAll(async () => {
    service.killAll();
    await service.exited;
    await database.remove();
  });

  it.each(cases)("answers $name with $status and still serves POST /identify", async (sent) => {
    const answer = await exchange(port, sent.bytes, sent.after);
    expect(answer.status).toBe(sent.status);
    if (answer.status >= 400 && answer.body !== "") {
      expect(answer.headers["content-type"]).toMatch(/^application\/json/);
      const body = JSON.parse(answer.body) as { error: Record<string, unknown> };
      expect(body.error).toEqual({
        code: expect.any(String),
        message: expect.any(String),
        issues: [],
        requestId: answer.headers["x-request-id"],
      });
    }

    const next = await exchange(port, post("/identify", HOST));
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body)).toMatchObject({ contact: { emails: ["raw@example.com"] } });
  });
});

/**
 * One refusal for each place start-up checks a setting: the service's configuration, npm
 * start's own settings, and the database. Which values each refuses is tested in-process
 * (test/config.test.ts, test/server-config.test.ts, test/access.test.ts).
 */
const refusedSettings: ReadonlyArray<{
  name: string;
  env: Record<string, string>;
  variable: string;
}> = [
  {
    name: "an API key with a space inside",
    env: { API_KEYS: "first-half-of-a-key second-half-of-a-key" },
    variable: "API_KEYS",
  },
  { name: "PORT=abc", env: { PORT: "abc" }, variable: "PORT" },
  {
    name: "a junk pattern JavaScript accepts and PostgreSQL refuses",
    env: { JUNK_EMAILS: "/(?<n>0)/" },
    variable: "JUNK_EMAILS",
  },
];

describe("npm start, given a setting it must refuse", () => {
  // Only the junk pattern gets as far as the database, which checks it; every service here
  // has exited (or been killed) before the next starts, releasing an embedded database.
  let database: ScratchDatabase;
  beforeAll(async () => {
    database = await scratchDatabase();
  });
  afterAll(() => database.remove());

  it.each(refusedSettings)(
    "exits with 1 on $name, naming $variable and quoting no key",
    async ({ env, variable }) => {
      const service = spawnService({ ...database.env, ...env });
      const outcome = await Promise.race([
        service.exited,
        service.listening.then(() => "listening" as const),
      ]);
      if (outcome === "listening") {
        service.killAll();
        await service.exited;
      }
      expect(outcome).toBe(1);
      const refusal = service.lines.find((line) => line.msg === "could not start");
      expect(String(refusal?.error)).toContain(`${variable}:`);
      expect(service.output.join("\n")).not.toMatch(/half-of-a-key/);
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});

/** Resolves like `promise`, or rejects once `ms` have passed: a bound on a wait, not a measure. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const bound = new AbortController();
  const expired = sleep(ms, undefined, { signal: bound.signal }).then(() => {
    throw new Error(`${what} within ${ms} ms`);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    bound.abort();
  }
}

describe("npm start, sent SIGTERM", () => {
  it(
    "exits with 0 within seconds despite an idle keep-alive connection, releasing the embedded database",
    async () => {
      const folder = await clonePglite();
      const dir = folder.dir;
      const service = spawnService({ PGLITE_DIR: dir }, { npm: true });
      try {
        const port = await service.listening;
        // A browser's keep-alive connection, idle after its answer.
        const idle = connect(port, "127.0.0.1");
        const closed = new Promise((resolve) => idle.once("close", resolve));
        idle.on("error", () => {});
        const answered = new Promise((resolve) => idle.once("data", resolve));
        idle.write("GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
        await answered;

        // npm's own process, as a container runtime or systemd signals it.
        service.child.kill("SIGTERM");
        expect(await within(service.exited, 15_000, "npm start did not exit")).toBe(0);
        await closed;
        expect(service.lines.map((line) => line.msg)).toContain("stopped");

        // A waiting time of 0: a lock left behind by a process still running fails at once.
        const next = await connectDatabase({ PGLITE_DIR: dir, PGLITE_LOCK_WAIT_MS: "0" });
        await next.close();
      } finally {
        service.killAll();
        await folder.remove();
      }
    },
    SPAWN_TEST_TIMEOUT_MS,
  );
});
