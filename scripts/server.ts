/**
 * The local HTTP server behind `npm start`: srvx's node:http adapter (Node requests to Web
 * Requests and back) around the very same exported handler that Vercel runs, plus the routes
 * deployment has: /identify, /identify/changes and their /api forms (each with or without a
 * trailing slash, as scripts/build-function.ts routes them), and public/ (srvx's static
 * middleware).
 *
 * Whatever a client sends ends in an answer or a closed connection, never in an exception
 * out of the handler (which would stop the process): Node refuses what it cannot parse
 * (400, 431...), and every answer from here on is the product's JSON error.
 */
import { createServer, IncomingMessage, type Server } from "node:http";
import { finished } from "node:stream";
import { fileURLToPath } from "node:url";
import type { NodeHttp1Handler, NodeServerResponse, ServerRequest } from "srvx";
import { FastResponse, NodeRequest, toNodeHandler } from "srvx/node";
import { staticMiddleware } from "srvx/static";
import identify from "../api/identify.js";
import { LOOPBACK_HOSTS } from "../lib/config.js";
import { badRequest, misdirectedRequest, notFound, toErrorResponse } from "../lib/errors.js";
import { log } from "../lib/log.js";

// srvx's Response for Node: the same class to every caller (it extends the global one), but
// it keeps a string body as it is, so the adapter writes it to the socket directly instead
// of reading it back through a web stream, and its headers become a Headers only if read.
// Set before any handler runs; the handler itself stays a plain Web-standard fetch handler.
// (It inherits error() and redirect() from the global class, which its type omits.)
globalThis.Response = FastResponse as unknown as typeof Response;

const serveStatic = staticMiddleware({
  dir: fileURLToPath(new URL("../public", import.meta.url)),
});

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
  const server: Server = createServer(
    // srvx types its handler for HTTP/1 and HTTP/2 at once; this server is HTTP/1.
    toNodeHandler(async (request: ServerRequest): Promise<Response> => {
      const req = request.runtime?.node?.req;
      const body = req instanceof IncomingMessage ? new RequestBody(req) : undefined;
      const response = await respond(request, allowedHosts, body);
      // Go's order: consume the leftover before the headers go out, so that they can still
      // say whether this connection carries another request.
      const whole = (await body?.discardRest(MAX_DISCARD_BYTES)) ?? true;
      return whole && server.listening ? response : withConnectionClose(response);
    }) as NodeHttp1Handler,
  );
  return server;
}

/** The paths the deployment routes to the function (scripts/build-function.ts). */
const FUNCTION_PATH = /^\/(?:api\/)?identify(?:\/changes)?\/?$/;

/** Routes a request the way the Vercel deployment does; never throws. */
async function respond(
  request: ServerRequest,
  allowedHosts: ReadonlySet<string>,
  body: RequestBody | undefined,
): Promise<Response> {
  try {
    const { pathname } = targetOf(request, allowedHosts);
    if (FUNCTION_PATH.test(pathname)) {
      // Only POST reads a body. Other methods are answered without one, among them TRACE,
      // which a Fetch `Request` refuses to carry (new Request threw, and stopped the server).
      const withBody = request.method === "POST" && body ? body.toRequest(request) : request;
      return await identify.fetch(withBody);
    }
    return await serveStatic(request, () => refusal(notFound(pathname), request));
  } catch (error) {
    return refusal(error, request);
  }
}

/**
 * The URL the request is for, once it is one this server answers: srvx builds it from the
 * Host header or an absolute-form target without checking that it parses (`Host: x:99999`
 * does not; srvx's getter even throws when the path also needs normalizing), reads a target
 * that is no URL at all as "/", and leaves broken percent-escapes in the path.
 * @throws HttpError 400 for an unparseable target, URL or path, 421 for a Host not allowed.
 */
function targetOf(request: ServerRequest, allowedHosts: ReadonlySet<string>): URL {
  const target = request.runtime?.node?.req?.url ?? "/";
  const href = (() => {
    try {
      return request.url;
    } catch {
      return "";
    }
  })();
  const formOk = target.startsWith("/") || target === "*" || URL.canParse(target);
  if (!formOk || !URL.canParse(href)) {
    throw badRequest("The Host header or the request target is not a valid URL");
  }
  const url = new URL(href);
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

/** The JSON error answer for a request the server itself refuses, with its log line. */
function refusal(error: unknown, request: Request): Response {
  const requestId = crypto.randomUUID();
  const { response, log: fields } = toErrorResponse(error, requestId);
  log(response.status >= 500 ? "error" : "info", "request", {
    requestId,
    method: request.method,
    status: response.status,
    ...fields,
  });
  return response;
}

/** The same response, saying that the connection ends after it. */
function withConnectionClose(response: Response): Response {
  const headers = new Headers(response.headers);
  headers.set("Connection", "close");
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
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
 * A request body as a Web stream that reads from the socket only as the handler asks.
 *
 * Why not srvx's own body (Readable.toWeb): cancelling that stream, as readJsonBody does once
 * a body grows past its limit, destroys the IncomingMessage, and Node then detaches it from
 * the socket without destroying the socket or reading the rest of the body. The socket stays
 * paused, the 413 still says keep-alive, and the client's next request on it waits unread
 * until the keep-alive timeout resets the connection (ECONNRESET). Here cancelling only stops
 * delivery to the handler; discardRest() then consumes or refuses what is left.
 */
class RequestBody {
  readonly #req: IncomingMessage;
  /** Bytes handed to the handler so far. */
  #received = 0;
  #controller: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>> | undefined;
  #stopFinished: (() => void) | undefined;
  /** Whether the stream has been read from or cancelled (the Fetch standard's "disturbed"). */
  #disturbed = false;

  constructor(req: IncomingMessage) {
    this.#req = req;
  }

  /**
   * The same request with this body; the handler reads it, or cancels it, or ignores it.
   * srvx's own lazy Request (nothing is built until asked for: no URL parse, Headers copy or
   * AbortSignal per request), with this body in place of srvx's.
   */
  toRequest(request: ServerRequest): Request {
    this.#req.pause();
    return new BodyRequest({ req: this.#req, res: request.runtime?.node?.res }, this);
  }

  get disturbed(): boolean {
    return this.#disturbed;
  }

  /** The body as a Web stream, for a handler that reads it piece by piece. */
  stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const req = this.#req;
    return new ReadableStream<Uint8Array<ArrayBuffer>>(
      {
        start: (controller) => {
          this.#controller = controller;
          req.on("data", this.#onData);
          this.#stopFinished = finished(req, (error) => {
            this.#release();
            if (error) controller.error(error);
            else controller.close();
          });
        },
        pull: () => {
          this.#disturbed = true;
          req.resume();
        },
        cancel: () => {
          this.#disturbed = true;
          this.#release();
        },
      },
      // Nothing is read ahead: every byte comes off the socket because the handler asked.
      { highWaterMark: 0 },
    );
  }

  /**
   * The whole body, read straight off the IncomingMessage (no Web stream): for a handler
   * that takes it at once, as readJsonBody does when Content-Length is within its limit.
   */
  readAll(): Promise<ArrayBuffer> {
    const req = this.#req;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer) => {
        this.#received += chunk.byteLength;
        chunks.push(chunk);
      };
      const stop = finished(req, (error) => {
        stop();
        req.off("data", onData);
        if (error) return reject(error);
        const whole = new Uint8Array(this.#received);
        let at = 0;
        for (const chunk of chunks) {
          whole.set(chunk, at);
          at += chunk.byteLength;
        }
        resolve(whole.buffer);
      });
      req.on("data", onData);
      req.resume();
    });
  }

  readonly #onData = (chunk: Buffer) => {
    this.#received += chunk.byteLength;
    const controller = this.#controller;
    if (!controller) return;
    controller.enqueue(new Uint8Array(chunk));
    if ((controller.desiredSize ?? 0) <= 0) this.#req.pause();
  };

  /** Stops delivering to the stream. */
  #release() {
    this.#controller = undefined;
    this.#req.off("data", this.#onData);
    this.#stopFinished?.();
    this.#stopFinished = undefined;
  }

  /**
   * Reads and drops whatever of the body the handler left, up to `maxBytes`. Resolves to
   * whether the body has now been read to its end, so the connection can carry another
   * request; false when more than `maxBytes` remain (it stops reading at once when
   * Content-Length says so) or the body broke off.
   */
  discardRest(maxBytes: number): Promise<boolean> {
    // A handler that returned while still reading would wait forever: fail its read instead.
    this.#controller?.error(new Error("The response was sent before the body was read"));
    this.#release();
    const req = this.#req;
    if (req.readableEnded) return Promise.resolve(true);
    if (req.destroyed) return Promise.resolve(false);
    const declared = Number(req.headers["content-length"]);
    if (declared - this.#received > maxBytes) return Promise.resolve(false);

    return new Promise((resolve) => {
      let discarded = 0;
      const onData = (chunk: Buffer) => {
        discarded += chunk.byteLength;
        if (discarded > maxBytes) settle(false);
      };
      const settle = (whole: boolean) => {
        stopFinished();
        req.off("data", onData);
        if (!whole) req.pause();
        resolve(whole);
      };
      const stopFinished = finished(req, (error) => settle(!error));
      req.on("data", onData);
      req.resume();
    });
  }
}

/** What srvx's NodeRequest is built from: the node:http pair. */
interface NodeContext {
  req: IncomingMessage;
  res?: NodeServerResponse | undefined;
}
const LazyRequest = NodeRequest as unknown as new (context: NodeContext) => Request;

/**
 * srvx's lazy Request whose body is a RequestBody: a Web stream made when `body` is first
 * read, or the whole body at once through arrayBuffer(). Everything else is srvx's.
 */
class BodyRequest extends LazyRequest {
  readonly #source: RequestBody;
  #stream: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #read = false;

  constructor(context: NodeContext, source: RequestBody) {
    super(context);
    this.#source = source;
  }

  override get body(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#stream ??= this.#source.stream();
    return this.#stream;
  }

  override get bodyUsed(): boolean {
    return this.#read || this.#source.disturbed;
  }

  override arrayBuffer(): Promise<ArrayBuffer> {
    if (this.bodyUsed || this.#stream?.locked) {
      return Promise.reject(new TypeError("Body is unusable: Body has already been read"));
    }
    this.#read = true;
    if (this.#stream) return new Response(this.#stream).arrayBuffer();
    return this.#source.readAll();
  }
}
