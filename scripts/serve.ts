/**
 * `npm start`: serves the Vercel Function locally through a thin node:http adapter (srvx
 * converts Node requests to Web Requests and back), so the code that runs here is the code
 * that runs on Vercel. Applies pending migrations first, and also serves public/ the way
 * Vercel does.
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import type { NodeHttp1Handler } from "srvx";
import { toNodeHandler } from "srvx/node";
import { handleIdentify } from "../api/identify.js";
import { getConfig } from "../lib/config.js";
import { closeDatabase, getConnection } from "../lib/db/client.js";
import { log } from "../lib/log.js";

const PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
};

/** The routes of vercel.json: the function under both paths, public/ for everything else. */
async function route(request: Request): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname === "/identify" || pathname === "/api/identify") return handleIdentify(request);
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

async function main() {
  const config = getConfig();
  const connection = await getConnection();
  await connection.migrate();

  const port = Number(process.env.PORT ?? 3000);
  // srvx types its handler for HTTP/1 and HTTP/2 at once; this server is HTTP/1.
  const server = createServer(toNodeHandler(route) as NodeHttp1Handler);
  server.once("error", (error) => {
    log("error", "could not listen", { port, error: error.message });
    process.exit(1);
  });
  server.listen(port, () => {
    const database = config.DATABASE_URL
      ? "PostgreSQL (DATABASE_URL)"
      : `PGlite (${config.PGLITE_DIR})`;
    log("info", "listening", { url: `http://localhost:${port}`, database });
  });

  const shutdown = () => {
    server.close();
    server.closeIdleConnections();
    void closeDatabase().finally(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  log("error", "could not start", {
    error: error instanceof Error ? error.message : String(error),
  });
  process.exit(1);
});
