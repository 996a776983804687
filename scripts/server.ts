/**
 * The local HTTP server behind `npm start`: node:http with @hono/node-server's request
 * listener (a lazy Web Request over each IncomingMessage, and the Response written back)
 * around the very same exported handler that Vercel runs, plus the routes the deployment
 * has: every path of lib/routes.ts goes to the function, as scripts/build-function.ts routes
 * it on Vercel, and the rest to the files of public/.
 *
 * Whatever a client sends ends in an answer or a closed connection, never in an exception
 * out of the handler (which would stop the process): Node refuses what it cannot parse
 * (400, 431...), and every answer from here on is the product's JSON error.
 *
 * The handler keeps the body limit (lib/http.ts stops reading at 16 KiB); this server owns
 * the connection, so it consumes what the handler left unread, or ends the connection.
 */
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { getRequestListener, type HttpBindings } from "@hono/node-server";
import identify from "../api/identify.js";
import { badRequest, misdirectedRequest, notFound, toErrorResponse } from "../lib/errors.js";
import { LOOPBACK_HOSTS } from "../lib/hosts.js";
import { log } from "../lib/log.js";
import { routeOf } from "../lib/routes.js";

/** How a server is set up; see createIdentifyServer. */
export interface IdentifyServerOptions {
  /**
   * Host names the server answers to, as URLs spell them (lower case, IPv6 in brackets), on
   * any port; "*" answers any. Default: LOOPBACK_HOSTS.
   */
  allowedHosts?: readonly string[];
}

/**
 * A node:http server for the routes above; the caller listens and closes it. Once close()
 * has been called, each response ends its connection, so that close() does not wait for
 * keep-alive connections to time out.
 */
export function createIdentifyServer(options: IdentifyServerOptions = {}): Server {
  const allowedHosts = new Set(options.allowedHosts ?? LOOPBACK_HOSTS);
  const listener = getRequestListener(
    async (request, env) => {
      const { incoming, outgoing } = env as HttpBindings;
      const response = await respond(request, allowedHosts);
      // Go's order: consume the leftover before the headers go out, so that they can still
      // say whether this connection carries another request.
      const whole = await discardRest(request, incoming, MAX_DISCARD_BYTES);
      if (!whole || !server.listening) outgoing.setHeader("Connection", "close");
      if (!whole) {
        closeLingering(incoming.socket, () => discardRest(request, incoming, MAX_LINGER_BYTES));
      }
      return response;
    },
    {
      // The handler is a plain Web-standard one: Request and Response stay Node's own.
      overrideGlobalObjects: false,
      // discardRest does it, within a bound, before the answer says keep-alive.
      autoCleanupIncoming: false,
      // The host of an HTTP/1.0 request without a Host header (HTTP/1.1 requires one).
      hostname: "localhost",
      // A target or Host that makes no URL, e.g. `Host: x:99999` or `GET not-a-url`.
      errorHandler: () =>
        refusal(badRequest("The Host header or the request target is not a valid URL")),
    },
  );
  const server = createServer((incoming, outgoing) => {
    const refused = unroutable(incoming, allowedHosts);
    if (refused) return void send(outgoing, refusal(refused, incoming.method));
    void listener(incoming, outgoing);
  });
  return server;
}

/** Routes a request the way the Vercel deployment does; never throws. */
async function respond(request: Request, allowedHosts: ReadonlySet<string>): Promise<Response> {
  try {
    const { pathname } = targetOf(request, allowedHosts);
    if (routeOf(pathname)) return await identify.fetch(request);
    return await serveStatic(request, pathname);
  } catch (error) {
    return refusal(error, request.method);
  }
}

/** A Host header shaped as a name or bracketed IPv6 address, with or without a port. */
const HOST_SHAPE = /^(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d*)?$/i;

/**
 * Why a request that the adapter could not make a URL of is refused, when the answer is
 * not its 400: `OPTIONS *` (a target for the server itself) is no route here, and a Host
 * that is not even shaped like a name is none this server answers to.
 */
function unroutable(incoming: IncomingMessage, allowedHosts: ReadonlySet<string>) {
  if (incoming.url === "*") return notFound("*");
  const host = incoming.headers.host;
  if (host && !HOST_SHAPE.test(host) && !allowedHosts.has("*")) return misdirectedRequest();
  return undefined;
}

/**
 * The URL the request is for, once it is one this server answers.
 * @throws HttpError 421 for a Host not allowed, 400 for a broken percent-escape in the path.
 */
function targetOf(request: Request, allowedHosts: ReadonlySet<string>): URL {
  const url = new URL(request.url);
  // Checking the name a browser sent defeats DNS rebinding: a page whose own name now
  // resolves to this machine still sends that name, not one of ours.
  if (!allowedHosts.has("*") && !allowedHosts.has(url.hostname)) throw misdirectedRequest();
  try {
    decodeURIComponent(url.pathname);
  } catch {
    throw badRequest("The request path has a broken percent-escape");
  }
  return url;
}

/** The files of public/, by path: the folder holds the whole site, read once listed. */
const PUBLIC = new URL("../public/", import.meta.url);
const PUBLIC_FILES = new Map<string, string>([
  ["/", "index.html"],
  ...readdirSync(PUBLIC)
    .filter((name) => /^\w[\w.-]*$/.test(name))
    .map((name): [string, string] => [`/${name}`, name]),
]);
const MEDIA_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  json: "application/json",
};

/**
 * GET or HEAD of a file of public/, by exact name: no path is ever joined to a folder, so
 * none reaches outside it. Anything else is a 404.
 */
async function serveStatic(request: Request, pathname: string): Promise<Response> {
  const name = PUBLIC_FILES.get(pathname);
  if (!name || (request.method !== "GET" && request.method !== "HEAD")) {
    return refusal(notFound(pathname), request.method);
  }
  const extension = name.slice(name.lastIndexOf(".") + 1);
  const body = request.method === "HEAD" ? null : await readFile(new URL(name, PUBLIC));
  return new Response(body, {
    headers: { "Content-Type": MEDIA_TYPES[extension] ?? "application/octet-stream" },
  });
}

/** The JSON error answer for a request the server itself refuses, with its log line. */
function refusal(error: unknown, method?: string): Response {
  const requestId = crypto.randomUUID();
  const { response, log: fields } = toErrorResponse(error, requestId);
  log(response.status >= 500 ? "error" : "info", "request", {
    requestId,
    method,
    status: response.status,
    ...fields,
  });
  return response;
}

/** Writes a refusal made before there is a Request; it ends the connection. */
async function send(outgoing: ServerResponse, response: Response): Promise<void> {
  const headers = Object.fromEntries(response.headers);
  const body = await response.text();
  outgoing.writeHead(response.status, { ...headers, Connection: "close" });
  outgoing.end(body);
}

/**
 * Most bytes of a request body the server reads and throws away when a handler answers
 * without reading all of it (413, 415, 400...). The unread bytes sit on the connection in
 * front of the client's next request, so they must be consumed for the connection to stay
 * usable; but reading an unbounded amount would let any client keep the server busy
 * receiving bytes nobody wants. Past this bound the response says `Connection: close`
 * instead. It is Go's net/http rule and bound (maxPostHandlerReadBytes), far above the
 * 16 KiB body limit, so an ordinary oversized JSON body still keeps its connection.
 */
export const MAX_DISCARD_BYTES = 256 * 1024;

/**
 * Most bytes, and longest time, a connection closed on a refused body keeps being read after
 * its answer ({@link closeLingering}). Enough for a client to finish sending a body of a few
 * megabytes and read the answer; bounded, so that nobody keeps the server reading for ever.
 */
export const MAX_LINGER_BYTES = 8 * 1024 * 1024;
const LINGER_MS = 5_000;

/**
 * Closes `socket` the way a lingering close does (Apache's lingering_close, nginx's
 * lingering_time), once the answer that says `Connection: close` is written: stop writing
 * (a FIN after the answer), keep reading and dropping what the client still sends, through
 * `drain`, for at most {@link LINGER_MS}, then close. Closing at once, as Node does, while
 * the client is still sending its body makes the kernel answer those bytes with a reset,
 * which reaches a client that reads no answer before its body is sent (Node's `fetch`) before
 * the 413: it saw a reset most of the time. Node closes such a connection by calling
 * `socket.destroySoon()` when the response finishes, so this socket's own method is replaced.
 */
function closeLingering(socket: Socket, drain: () => Promise<boolean>): void {
  socket.destroySoon = () => {
    socket.end();
    const cut = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    void drain().finally(() => {
      clearTimeout(cut);
      socket.destroy();
    });
  };
}

/**
 * Reads and drops whatever of the body the handler left, up to `maxBytes`: through the
 * request's body stream once the handler has read from it (that stream holds what it took
 * off the socket), else straight off the IncomingMessage. Resolves to whether the body has
 * now been read to its end, so that the connection can carry another request; false when
 * more than `maxBytes` remain (at once when Content-Length says so), the body broke off,
 * or the handler still holds a reader.
 */
async function discardRest(
  request: Request,
  incoming: IncomingMessage,
  maxBytes: number,
): Promise<boolean> {
  if (incoming.readableEnded) return true;
  if (incoming.destroyed) return false;
  if (!request.bodyUsed) {
    if (Number(incoming.headers["content-length"]) > maxBytes) return false;
    return discardIncoming(incoming, maxBytes);
  }
  const body = request.body;
  if (!body || body.locked) return false;
  const reader = body.getReader();
  let discarded = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      discarded += value.byteLength;
      // Stop without cancelling, which would destroy the socket before the answer (that
      // says Connection: close) is written.
      if (discarded > maxBytes) return false;
    }
  } catch {
    return false;
  } finally {
    reader.releaseLock();
  }
  // A stream cancelled by the handler ends at once, with the socket's bytes still unread.
  return incoming.readableEnded;
}

/** discardRest for a body nothing has read from. */
function discardIncoming(incoming: IncomingMessage, maxBytes: number): Promise<boolean> {
  return new Promise((resolve) => {
    let discarded = 0;
    const settle = (whole: boolean) => {
      incoming.off("data", onData).off("end", onEnd).off("close", onClose);
      if (!whole) incoming.pause();
      resolve(whole);
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.byteLength;
      if (discarded > maxBytes) settle(false);
    };
    const onEnd = () => settle(true);
    const onClose = () => settle(incoming.readableEnded);
    incoming.on("data", onData).on("end", onEnd).on("close", onClose);
    incoming.resume();
  });
}
