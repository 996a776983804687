/** `npm run openapi`: writes the generated OpenAPI document to public/openapi.json. */
import { writeFile } from "node:fs/promises";
import { buildOpenApiDocument } from "./openapi.js";

const OPENAPI_FILE = new URL("../public/openapi.json", import.meta.url);

await writeFile(OPENAPI_FILE, `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
console.log("Wrote public/openapi.json");
