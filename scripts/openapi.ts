/**
 * Builds the OpenAPI 3.1 document of POST /identify and GET /identify/changes from the
 * valibot schemas in lib/, and its error examples from the error factories of lib/errors.ts
 * and the errors the parsers throw, so the reference cannot drift from the code.
 * `npm run openapi` writes it to public/openapi.json; a test fails when the committed file is
 * stale.
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";
import { BODY_LIMIT_BYTES } from "../api/identify.js";
import {
  CHANGES_LIMIT_DEFAULT,
  CHANGES_LIMIT_MAX,
  encodeCursor,
  parseChangesQuery,
} from "../lib/changes.js";
import {
  CHANGE_KINDS,
  ChangesResponseSchema,
  ContactResponseSchema,
  ErrorResponseSchema,
} from "../lib/contract.js";
import {
  badJson,
  customerTooLarge,
  databaseUnavailable,
  HttpError,
  internalError,
  invalidCursor,
  methodNotAllowed,
  misconfigured,
  payloadTooLarge,
  unauthorized,
  unsupportedMediaType,
} from "../lib/errors.js";
import { IdentifyRequestObjectSchema, parseIdentifyRequest } from "../lib/input.js";
import { ROUTES } from "../lib/routes.js";

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect) of a schema's wire (input) side. */
function jsonSchema(schema: GenericSchema) {
  const { $schema: _dialect, ...rest } = toJsonSchema(schema, {
    target: "draft-2020-12",
    typeMode: "input",
    errorMode: "throw",
  });
  return rest;
}

/** The body the handler answers `error` with (lib/errors.ts's toErrorResponse), as an example. */
const errorExample = ({ code, message, issues }: HttpError) => ({
  value: {
    error: { code, message, issues, requestId: "4c2a7d3e-8f7b-4d8e-9a51-0d2f1b6c9e10" },
  },
});

/** The HttpError a parser throws for an example of wrong input. */
function thrownBy(parse: () => unknown): HttpError {
  try {
    parse();
  } catch (error) {
    if (error instanceof HttpError) return error;
    throw error;
  }
  throw new Error("the example input was accepted");
}

/** The one method a route answers (lib/routes.ts), for its 405's Allow. */
const methodOf = (name: (typeof ROUTES)[number]["name"]) =>
  ROUTES.find((route) => route.name === name)?.method ?? "";

const errorResponse = (
  description: string,
  examples: Record<string, object>,
  headers?: object,
) => ({
  description,
  ...(headers ? { headers } : {}),
  content: {
    "application/json": { schema: { $ref: "#/components/schemas/ErrorResponse" }, examples },
  },
});

const unauthorizedResponse = () =>
  errorResponse(
    "Only when API keys are configured: no key, or not a valid one.",
    {
      unauthorized: errorExample(unauthorized()),
    },
    {
      "WWW-Authenticate": {
        schema: { type: "string" },
        description: 'Bearer realm="identify", with error="invalid_token" for a wrong key.',
      },
    },
  );

/** A cursor as the feed hands them out (clients treat them as opaque). */
const EXAMPLE_CURSOR = encodeCursor({
  database: "5f0c9a41d27e8b36",
  position: { transactionId: 1042n, source: 0, id: 31n, item: 0 },
});

/** GET /identify/changes. */
function changesOperation() {
  return {
    operationId: "changes",
    security: [{}, { apiKey: [] }],
    summary: "The change feed: which customer each contact belongs to, change by change",
    description: `Also reachable as /api/identify/changes. Every change to which customer a contact belongs, oldest first: a contact created (kind created), moved to another primary by a merge, a settle or an import (relinked), soft-deleted (deleted) or erased on request (erased). Page through it with next; apply each change in order to a map from contactId to primaryContactId, removing the contact when primaryContactId is null (kinds deleted and erased). The kinds: ${CHANGE_KINDS.join(", ")}. Whenever the feed has been read to its end (a page with no changes), the map holds exactly the live contacts and their current primaries. Pages never skip or repeat a change, whatever commits concurrently: a change appears once every transaction that began writing before it has ended. An empty page hands back the cursor it was given; keep it and ask again later.`,
    parameters: [
      {
        name: "after",
        in: "query",
        required: false,
        description:
          "The next of the previous page. Leave it out to start at the beginning. Opaque: never build or change one.",
        schema: { type: "string" },
        example: EXAMPLE_CURSOR,
      },
      {
        name: "limit",
        in: "query",
        required: false,
        description: "Most changes in the page.",
        schema: {
          type: "integer",
          minimum: 1,
          maximum: CHANGES_LIMIT_MAX,
          default: CHANGES_LIMIT_DEFAULT,
        },
      },
    ],
    responses: {
      "200": {
        description:
          "The changes after `after`, oldest first, at most limit of them, and the cursor to continue from.",
        headers: { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } },
        content: {
          "application/json": {
            schema: { $ref: "#/components/schemas/ChangesResponse" },
            examples: {
              merge: {
                summary:
                  "The first page after worked example 2 (ids and cursors differ per database)",
                value: {
                  changes: [
                    {
                      contactId: 11,
                      primaryContactId: 11,
                      kind: "created",
                      at: "2026-12-02T06:20:33.101Z",
                    },
                    {
                      contactId: 27,
                      primaryContactId: 11,
                      kind: "created",
                      at: "2026-12-02T06:20:33.164Z",
                    },
                    {
                      contactId: 27,
                      primaryContactId: 11,
                      kind: "relinked",
                      at: "2026-12-02T06:20:33.219Z",
                    },
                  ],
                  next: EXAMPLE_CURSOR,
                },
              },
              erased: {
                summary: "After npm run forget erased that customer",
                value: {
                  changes: [
                    {
                      contactId: 11,
                      primaryContactId: null,
                      kind: "erased",
                      at: "2026-12-03T09:00:00.000Z",
                    },
                    {
                      contactId: 27,
                      primaryContactId: null,
                      kind: "erased",
                      at: "2026-12-03T09:00:00.000Z",
                    },
                  ],
                  next: EXAMPLE_CURSOR,
                },
              },
              end: {
                summary: "Nothing new: the same cursor back",
                value: { changes: [], next: EXAMPLE_CURSOR },
              },
            },
          },
        },
      },
      "400": errorResponse(
        "after is not a cursor this database's feed handed out (malformed, altered, of an earlier version, of another database, or ahead of anything handed out), or limit is not a whole number from 1 to 1000.",
        {
          invalidCursor: errorExample(invalidCursor("malformed")),
          invalidLimit: errorExample(
            thrownBy(() => parseChangesQuery(new URLSearchParams({ limit: "0" }))),
          ),
        },
      ),
      "401": unauthorizedResponse(),
      "405": errorResponse(
        "Any method but GET.",
        { methodNotAllowed: errorExample(methodNotAllowed([methodOf("changes")])) },
        { Allow: { schema: { type: "string", const: methodOf("changes") } } },
      ),
      "500": errorResponse(
        "An unexpected failure, or an invalid setting of the deployment; details are in the server log.",
        { internalError: errorExample(internalError()) },
      ),
      "503": errorResponse(
        "The database is unreachable, overloaded or timed out. Reading is safe to repeat.",
        {
          databaseUnavailable: errorExample(databaseUnavailable()),
        },
        { "Retry-After": { schema: { type: "string" }, description: "Seconds to wait." } },
      ),
    },
  };
}

/** The OpenAPI 3.1 document, as a plain JSON value. */
export function buildOpenApiDocument() {
  return {
    openapi: "3.1.0",
    info: {
      title: "identify",
      version: "1.0.0",
      summary: "Links every email and phone number a customer has used into one customer.",
      description:
        "Contacts that share an email or a phone number (directly or through other contacts) are one customer. The oldest contact is its primary; every other one is a secondary pointing straight at it. A request with a new email or phone adds a secondary; a request joining two customers makes the newer primary (and everything under it) secondary to the older; a request that brings nothing new changes nothing, so every request is safe to retry.",
    },
    servers: [{ url: "/", description: "The deployment serving this document" }],
    paths: {
      "/identify": {
        post: {
          operationId: "identify",
          // The empty requirement: `npm start` on loopback, and a deployment opened on purpose
          // (ALLOW_PUBLIC_ACCESS=true), take no key; every other deployment requires one.
          security: [{}, { apiKey: [] }],
          summary: "Find or link the customer for an order's contact details",
          description: "Also reachable as /api/identify.",
          requestBody: {
            required: true,
            description: `JSON, at most ${BODY_LIMIT_BYTES} bytes, sent with a JSON Content-Type.`,
            content: {
              "application/json": {
                schema: { $ref: "#/components/schemas/IdentifyRequest" },
                examples: {
                  newCustomer: {
                    summary: "Worked example 1, first order",
                    value: { email: "lorraine@hillvalley.edu", phoneNumber: "123456" },
                  },
                  newSecondary: {
                    summary: "Worked example 1, a new email on a known phone",
                    value: { email: "mcfly@hillvalley.edu", phoneNumber: "123456" },
                  },
                  lookupByPhone: {
                    summary: "Worked example 1, a lookup that writes nothing",
                    value: { email: null, phoneNumber: "123456" },
                  },
                  merge: {
                    summary: "Worked example 2, joining george's and biffsucks' customers",
                    value: { email: "george@hillvalley.edu", phoneNumber: "717171" },
                  },
                },
              },
            },
          },
          responses: {
            "200": {
              description: "The customer the request's email and phone number belong to.",
              headers: { "X-Request-Id": { $ref: "#/components/headers/X-Request-Id" } },
              content: {
                "application/json": {
                  schema: { $ref: "#/components/schemas/ContactResponse" },
                  examples: {
                    newSecondary: {
                      summary: "After worked example 1 (ids differ per database)",
                      value: {
                        contact: {
                          primaryContactId: 1,
                          primaryContatctId: 1,
                          emails: ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"],
                          phoneNumbers: ["123456"],
                          secondaryContactIds: [23],
                        },
                      },
                    },
                    merge: {
                      summary: "After worked example 2",
                      value: {
                        contact: {
                          primaryContactId: 11,
                          primaryContatctId: 11,
                          emails: ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
                          phoneNumbers: ["919191", "717171"],
                          secondaryContactIds: [27],
                        },
                      },
                    },
                  },
                },
              },
            },
            "400": errorResponse(
              "Invalid JSON, wrong types, invalid values, or neither field given.",
              {
                invalidJson: errorExample(badJson()),
                invalidRequest: errorExample(
                  thrownBy(() => parseIdentifyRequest({ email: "not-an-email" })),
                ),
                nothingGiven: errorExample(thrownBy(() => parseIdentifyRequest({}))),
              },
            ),
            "401": unauthorizedResponse(),
            "405": errorResponse(
              "Any method but POST.",
              { methodNotAllowed: errorExample(methodNotAllowed([methodOf("identify")])) },
              { Allow: { schema: { type: "string", const: methodOf("identify") } } },
            ),
            "409": errorResponse(
              "The request reaches a customer of more contacts than MAX_CONTACTS_PER_CUSTOMER (default 1000), or would grow one past it. Nothing was written.",
              {
                customerTooLarge: errorExample(customerTooLarge(100)),
              },
            ),
            "413": errorResponse(`A body over ${BODY_LIMIT_BYTES} bytes.`, {
              payloadTooLarge: errorExample(payloadTooLarge(BODY_LIMIT_BYTES)),
            }),
            "415": errorResponse("A missing Content-Type, or one that is not JSON.", {
              unsupportedMediaType: errorExample(unsupportedMediaType()),
            }),
            "500": errorResponse(
              "An unexpected failure, or an invalid setting of the deployment (misconfigured, to every request until it is fixed); details are in the server log.",
              {
                internalError: errorExample(internalError()),
                misconfigured: errorExample(misconfigured()),
              },
            ),
            "503": errorResponse(
              "The database is unreachable, overloaded or timed out. Nothing was written, or the write is safe to repeat.",
              {
                databaseUnavailable: errorExample(databaseUnavailable()),
              },
              { "Retry-After": { schema: { type: "string" }, description: "Seconds to wait." } },
            ),
          },
        },
      },
      "/identify/changes": { get: changesOperation() },
    },
    components: {
      schemas: {
        IdentifyRequest: jsonSchema(IdentifyRequestObjectSchema),
        ContactResponse: jsonSchema(ContactResponseSchema),
        ChangesResponse: jsonSchema(ChangesResponseSchema),
        ErrorResponse: jsonSchema(ErrorResponseSchema),
      },
      securitySchemes: {
        apiKey: {
          type: "http",
          scheme: "bearer",
          description:
            "Required by every deployment (it refuses to run without API_KEYS unless ALLOW_PUBLIC_ACCESS=true) and by npm start on a non-loopback HOST.",
        },
      },
      headers: {
        "X-Request-Id": {
          description: "Identifies the request in the server's log.",
          schema: { type: "string" },
        },
      },
    },
  };
}
