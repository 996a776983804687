// One cold start, run as a fresh process: import the function module the way Vercel's Node
// launcher does (import it, unwrap `default`, call its `fetch` with a Web Request), send one
// POST, and print how long after process start the import and the response finished.
import { pathToFileURL } from "node:url";

const [handlerPath, body] = process.argv.slice(2);
let listener = await import(pathToFileURL(handlerPath).href);
for (let i = 0; i < 5 && listener.default; i++) listener = listener.default;
const importedMs = performance.now();
const response = await listener.fetch(
  new Request("https://identify.example/identify", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  }),
);
const text = await response.text();
const respondedMs = performance.now();
process.stdout.write(
  `cold-start ${JSON.stringify({ status: response.status, importedMs, respondedMs, bytes: text.length })}\n`,
);
// The pool keeps sockets open; a cold start ends at its first response.
process.exit(0);
