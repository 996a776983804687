/**
 * The OpenAPI document in public/openapi.json: generated from the code, valid OpenAPI 3.1,
 * and describing what the handler really answers for every documented status.
 */
import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import identify from "../api/identify.js";
import {
  customerTooLarge,
  DatabaseUnavailableError,
  toErrorResponse,
  unauthorized,
} from "../lib/errors.js";
import { parseIdentifyRequest } from "../lib/input.js";
import { buildOpenApiDocument } from "../scripts/openapi.js";
import { serveFromPgliteCopy } from "./support/databases.js";

type Doc = ReturnType<typeof buildOpenApiDocument>;
type Operation = Doc["paths"]["/identify"]["post"];

const committed = JSON.parse(
  await readFile(new URL("../public/openapi.json", import.meta.url), "utf8"),
) as Doc;
const operation: Operation = committed.paths["/identify"].post;

const ajv = new Ajv2020({ strict: true, allErrors: true });
for (const [name, schema] of Object.entries(committed.components.schemas)) {
  ajv.addSchema(schema, `#/components/schemas/${name}`);
}

/** Validates a response's body against the schema documented for its status. */
async function expectDocumented(response: Response) {
  type Documented = { content: Record<string, { schema: { $ref: string } }> };
  const documented = (operation.responses as Record<string, Documented>)[String(response.status)];
  expect(documented, `status ${response.status} is documented`).toBeDefined();
  const ref = documented?.content["application/json"]?.schema.$ref;
  const validate = ajv.getSchema(ref ?? "");
  expect(validate, `schema ${ref}`).toBeDefined();
  const body: unknown = await response.json();
  const valid = validate?.(body);
  expect(validate?.errors ?? [], JSON.stringify(body)).toEqual([]);
  expect(valid).toBe(true);
}

const request = (init: RequestInit) =>
  identify.fetch(new Request("http://localhost/identify", { method: "POST", ...init }));
const json = (body: unknown) =>
  request({ headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

describe("the OpenAPI document", () => {
  serveFromPgliteCopy();

  it("is the document the code generates (run `npm run openapi` after changing the contract)", () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });

  it("is valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(structuredClone(committed));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("has request examples that the handler accepts", () => {
    const examples = Object.values(operation.requestBody.content["application/json"].examples);
    expect(examples.length).toBeGreaterThan(0);
    for (const { value } of examples) expect(parseIdentifyRequest(value).success).toBe(true);
  });

  it("describes a real 200 response", async () => {
    await json({ email: "lorraine@hillvalley.edu", phoneNumber: "123456" });
    await expectDocumented(await json({ email: "mcfly@hillvalley.edu", phoneNumber: 123456 }));
  });

  it.each([
    ["400 invalid JSON", () => request({ body: "{" })],
    ["400 invalid fields", () => json({ email: "nope", phoneNumber: true })],
    ["400 nothing given", () => json({})],
    ["405", () => identify.fetch(new Request("http://localhost/identify"))],
    ["413", () => json({ padding: "x".repeat(20_000) })],
    ["415", () => request({ headers: { "Content-Type": "text/plain" }, body: "hi" })],
  ])("describes a real %s response", async (_name, send) => {
    await expectDocumented(await send());
  });

  it("describes the 401, 409, 503 and 500 bodies the error mapper produces", async () => {
    const responses = [
      unauthorized(),
      customerTooLarge(2),
      new DatabaseUnavailableError("down"),
      new Error("boom"),
    ].map((error) => toErrorResponse(error, "id-1").response);
    expect(responses.map((response) => response.status)).toEqual([401, 409, 503, 500]);
    for (const response of responses) await expectDocumented(response);
  });
});
