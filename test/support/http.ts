/** Calling the exported handler the way a client would: a real `Request` in, a `Response` out. */
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
