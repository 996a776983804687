/**
 * Web-standard request helpers shared by every handler: reading a JSON body within a size
 * limit, and JSON responses. Runs unchanged on Vercel, under `vercel dev` and behind the
 * node:http adapter of `npm start`.
 */
import { badJson, clientClosed, payloadTooLarge, unsupportedMediaType } from "./errors.js";

/** application/json, or any structured-syntax JSON type such as application/merge-patch+json. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

/**
 * Reads and parses the body as JSON, refusing more than `limitBytes`. The Content-Type must
 * be JSON: a missing one is refused too (415), because a browser lets any page send a
 * cross-site POST without one (a no-cors fetch), while a JSON type makes it ask first.
 * @throws HttpError 413, 415, 400 (invalid JSON), or 499 when the client goes away mid-body.
 */
export async function readJsonBody(request: Request, limitBytes: number): Promise<unknown> {
  const mediaType = request.headers.get("content-type")?.split(";", 1)[0]?.trim() ?? "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) throw unsupportedMediaType();

  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > limitBytes) throw payloadTooLarge(limitBytes);

  // A declared length within the limit is the body's length (HTTP framing), so it is read
  // whole; otherwise piece by piece, stopping at the limit.
  const text =
    declared <= limitBytes ? await readWhole(request) : await readText(request, limitBytes);
  if (text.trim() === "") throw badJson();
  try {
    return JSON.parse(text);
  } catch {
    throw badJson();
  }
}

/** Reads the whole body as UTF-8. */
async function readWhole(request: Request): Promise<string> {
  const bytes = await request.arrayBuffer().catch(() => {
    // As in readText: the body only fails to arrive when the client went away.
    throw clientClosed();
  });
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badJson();
  }
}

/** Reads the body as UTF-8, stopping as soon as it grows past `limitBytes`. */
async function readText(request: Request, limitBytes: number): Promise<string> {
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let received = 0;
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read().catch(() => {
        // The body stream only fails when its source does: the client closed the
        // connection (or the platform aborted the request) before the body ended.
        throw clientClosed();
      });
      if (done) break;
      received += value.byteLength;
      // Stop reading, without cancelling: what is left of the body, and the connection it
      // arrives on, are the server's to discard or close (scripts/server.ts keeps a client's
      // keep-alive connection usable that way), not the handler's.
      if (received > limitBytes) throw payloadTooLarge(limitBytes);
      text += decoder.decode(value, { stream: true });
    }
    return text + decoder.decode();
  } catch (error) {
    // A TypeError from the decoder means the bytes are not UTF-8, so not JSON either.
    if (error instanceof TypeError) throw badJson();
    throw error;
  } finally {
    reader.releaseLock();
  }
}

/**
 * A JSON response that is never cached: every answer describes the customer right now.
 * Built from the serialized text and a plain header object, what Response.json does minus
 * its Headers copy.
 */
export function jsonResponse(
  body: unknown,
  init: { status?: number; headers?: Record<string, string> } = {},
): Response {
  return new Response(JSON.stringify(body), {
    status: init.status ?? 200,
    headers: { "Content-Type": "application/json", ...init.headers, "Cache-Control": "no-store" },
  });
}
