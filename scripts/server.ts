/**
 * The local HTTP server behind `npm start`: a thin node:http adapter (srvx converts Node
 * requests to Web Requests and back) around the very same exported handler that Vercel
 * runs, plus the routes vercel.json gives it: /identify, /api/identify, and public/.
 */
import { readFile } from "node:fs/promises";
import { createServer, IncomingMessage, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import { finished } from "node:stream";
import { fileURLToPath } from "node:url";
import type { NodeHttp1Handler, ServerRequest } from "srvx";
import { toNodeHandler } from "srvx/node";
import identify from "../api/identify.js";

const PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
};

/** Routes a request the way the Vercel deployment does. */
export async function route(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname === "/identify" || pathname === "/api/identify") return identify.fetch(request);
  if (request.method === "GET" || request.method === "HEAD") {
    const file = await readPublicFile(pathname === "/" ? "/index.html" : pathname);
    if (file) return new Response(request.method === "HEAD" ? null : file.body, file.init);
  }
  return Response.json(
    { error: { code: "not_found", message: `Nothing at ${pathname}`, issues: [] } },
    { status: 404 },
  );
}

async function readPublicFile(pathname: string) {
  // normalize() resolves "..", and stripping leading separators keeps the path inside public/.
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\]|\.\.)+/, "");
  const type = CONTENT_TYPES[extname(relative)];
  if (!type) return undefined;
  try {
    const body = await readFile(join(PUBLIC_DIR, relative));
    return { body, init: { headers: { "Content-Type": type } } };
  } catch {
    return undefined;
  }
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
 * A node:http server for the routes above; the caller listens and closes it. Once close()
 * has been called, each response ends its connection, so that close() does not wait for
 * keep-alive connections to time out.
 */
export function createIdentifyServer(): Server {
  const server: Server = createServer(
    // srvx types its handler for HTTP/1 and HTTP/2 at once; this server is HTTP/1.
    toNodeHandler(async (request: ServerRequest): Promise<Response> => {
      const response = await serve(request);
      return server.listening ? response : withConnectionClose(response);
    }) as NodeHttp1Handler,
  );
  return server;
}

/** route(), reading the body through a RequestBody and deciding whether the connection lives. */
async function serve(request: ServerRequest): Promise<Response> {
  const req = request.runtime?.node?.req;
  if (!(req instanceof IncomingMessage)) return route(request);
  const body = new RequestBody(req);
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  const response = await route(hasBody ? body.toRequest(request) : request);
  // Go's order: consume the leftover before the headers go out, so that they can still say
  // whether this connection carries another request.
  return (await body.discardRest(MAX_DISCARD_BYTES)) ? response : withConnectionClose(response);
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

  constructor(req: IncomingMessage) {
    this.#req = req;
  }

  /** The same request with this body; the handler reads it, or cancels it, or ignores it. */
  toRequest(request: Request): Request {
    const req = this.#req;
    req.pause();
    const body = new ReadableStream<Uint8Array<ArrayBuffer>>(
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
          req.resume();
        },
        cancel: () => this.#release(),
      },
      // Nothing is read ahead: every byte comes off the socket because the handler asked.
      { highWaterMark: 0 },
    );
    const init = {
      method: request.method,
      headers: request.headers,
      body,
      signal: request.signal,
      duplex: "half",
    };
    return new Request(request.url, init as RequestInit);
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
