/**
 * The local HTTP server behind `npm start`: a thin node:http adapter (srvx converts Node
 * requests to Web Requests and back) around the very same exported handler that Vercel
 * runs, plus the routes vercel.json gives it: /identify, /api/identify, and public/.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeHttp1Handler } from "srvx";
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

/** A node:http server for the routes above; the caller listens and closes it. */
export function createIdentifyServer(): Server {
  // srvx types its handler for HTTP/1 and HTTP/2 at once; this server is HTTP/1.
  return createServer(toNodeHandler(route) as NodeHttp1Handler);
}
