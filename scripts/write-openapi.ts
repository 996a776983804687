/** `npm run openapi`: writes the generated OpenAPI document to public/openapi.json. */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { buildOpenApiDocument } from "./openapi.js";

const USAGE = `Usage: npm run openapi
  Writes public/openapi.json from the request and response schemas (lib/input.ts,
  lib/contract.ts) and the error factories (lib/errors.ts); test/openapi.test.ts fails while
  the committed file differs from what this writes.`;

const OPENAPI_FILE = new URL("../public/openapi.json", import.meta.url);

if (parseArgs({ options: { help: { type: "boolean", short: "h" } } }).values.help) {
  console.log(USAGE);
} else {
  await writeFile(OPENAPI_FILE, `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
  console.log("Wrote public/openapi.json");
}
