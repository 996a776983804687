/** Calling the exported handler the way a client would: a real `Request` in, a `Response` out. */
import { expect } from "vitest";
import identify from "../../api/identify.js";

export const IDENTIFY_URL = "http://localhost/identify";

/** POSTs a JSON body (or raw text with `raw`) to the handler, with extra headers if given. */
export function postIdentify(
  body: unknown,
  init: { headers?: Record<string, string>; raw?: boolean } = {},
): Promise<Response> {
  return identify.fetch(
    new Request(IDENTIFY_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...init.headers },
      body: init.raw ? (body as string) : JSON.stringify(body),
    }),
  );
}

/**
 * Checks that `response` is the JSON error `status` `code`, carrying the response's request id;
 * answers the error body.
 */
export async function errorOf(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await response.json()) as {
    error: {
      code: string;
      message: string;
      issues: { path: string; message: string }[];
      requestId: string;
    };
  };
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.requestId).toBe(response.headers.get("x-request-id"));
  return body.error;
}
