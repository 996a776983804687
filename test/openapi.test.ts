/**
 * The OpenAPI document in public/openapi.json: generated from the code, valid OpenAPI 3.1,
 * with examples that match their schemas and that are, word for word, what the handler
 * answers (only ids and request ids differ from one database and request to the next).
 */
import { readFile } from "node:fs/promises";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import { sql } from "drizzle-orm";
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import identify, { BODY_LIMIT_BYTES } from "../api/identify.js";
import { getConnection, getDatabase } from "../lib/db/client.js";
import { forgetCustomer } from "../lib/forget.js";
import { parseIdentifyRequest } from "../lib/input.js";
import { buildOpenApiDocument } from "../scripts/openapi.js";
import { resetContacts, serveScratchDatabase } from "./support/databases.js";
import { IDENTIFY_URL } from "./support/http.js";

type Doc = ReturnType<typeof buildOpenApiDocument>;
type Operation = Doc["paths"]["/identify"]["post"];
type Documented = {
  content: Record<string, { schema: { $ref: string }; examples: Record<string, Example> }>;
};
type Example = { value: unknown };

const committed = JSON.parse(
  await readFile(new URL("../public/openapi.json", import.meta.url), "utf8"),
) as Doc;
const operation: Operation = committed.paths["/identify"].post;
const responses = operation.responses as Record<string, Documented>;
const requestExamples = operation.requestBody.content["application/json"].examples;

const ajv = new Ajv2020({
  strict: true,
  allErrors: true,
  // The change feed's times: what Date.prototype.toISOString writes.
  formats: { "date-time": /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ },
});
for (const [name, schema] of Object.entries(committed.components.schemas)) {
  ajv.addSchema(schema, `#/components/schemas/${name}`);
}

/** The schema errors of a JSON value against a documented schema (none when it conforms). */
function schemaErrors(ref: string, value: unknown) {
  const validate = ajv.getSchema(ref);
  if (!validate) throw new Error(`no schema ${ref}`);
  validate(value);
  return validate.errors ?? [];
}

const jsonContent = (status: string) => responses[status]?.content["application/json"];

/** Every documented response example, as "status name". */
const documentedExamples = Object.entries(responses).flatMap(([status, response]) =>
  Object.keys(response.content["application/json"]?.examples ?? {}).map(
    (name) => `${status} ${name}`,
  ),
);

describe("the OpenAPI document", () => {
  it("is the document the code generates (run `npm run openapi` after changing the contract)", () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });

  it("is valid OpenAPI 3.1", async () => {
    const result = await new Validator().validate(structuredClone(committed));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("has request examples that match the request schema and that the handler accepts", () => {
    const examples = Object.entries(requestExamples);
    expect(examples.length).toBeGreaterThan(0);
    for (const [name, { value }] of examples) {
      expect(schemaErrors("#/components/schemas/IdentifyRequest", value), name).toEqual([]);
      expect(() => parseIdentifyRequest(value), name).not.toThrow();
    }
  });

  it("has response examples that match the schema documented for their status", () => {
    expect(documentedExamples.length).toBeGreaterThan(0);
    for (const [status, response] of Object.entries(responses)) {
      const content = response.content["application/json"];
      for (const [name, { value }] of Object.entries(content?.examples ?? {})) {
        expect(schemaErrors(content?.schema.$ref ?? "", value), `${status} ${name}`).toEqual([]);
      }
    }
  });
});

describe("the OpenAPI response examples", () => {
  const KEY = "openapi-test-key-0123456789";
  /** The size the 409 example names. */
  const CAP = 100;

  serveScratchDatabase();
  beforeAll(() => {
    // Keys and a cap, so that the 401 and 409 examples have real counterparts.
    process.env.API_KEYS = KEY;
    process.env.MAX_CONTACTS_PER_CUSTOMER = String(CAP);
  });
  beforeEach(async () => resetContacts(await getConnection()));

  /** Sends a request to `handler` (the one imported above unless given), with the key. */
  const send = (init: RequestInit & { key?: string | null }, handler = identify) => {
    const { key = KEY, headers, ...rest } = init;
    return handler.fetch(
      new Request(IDENTIFY_URL, {
        method: "POST",
        ...rest,
        headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers },
      }),
    );
  };
  const post = (body: unknown, init: { key?: string | null } = {}, handler = identify) =>
    send(
      { ...init, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
      handler,
    );
  const postExample = (name: keyof typeof requestExamples) => post(requestExamples[name].value);
  const contactOf = async (response: Response) =>
    ((await response.json()) as { contact: { primaryContactId: number } }).contact;

  /** What the handler answers in each documented situation, by "status example". */
  const situations: Record<string, () => Promise<Response>> = {
    "200 newSecondary": async () => {
      await postExample("newCustomer");
      return postExample("newSecondary");
    },
    "200 merge": async () => {
      await post({ email: "george@hillvalley.edu", phoneNumber: "919191" });
      await post({ email: "biffsucks@hillvalley.edu", phoneNumber: "717171" });
      return postExample("merge");
    },
    "400 invalidJson": () =>
      send({ headers: { "Content-Type": "application/json" }, body: '{"email": ' }),
    "400 invalidRequest": () => post({ email: "not-an-email" }),
    "400 nothingGiven": () => post({}),
    "401 unauthorized": () => send({ key: null, body: JSON.stringify({ email: "a@x.io" }) }),
    "405 methodNotAllowed": () => send({ method: "GET" }),
    "409 customerTooLarge": async () => {
      const { db } = await getConnection();
      await db.execute(sql`
        with primary_contact as (
          insert into contacts (email, phone_number, link_precedence)
          values ('member0@x.io', '4242', 'primary') returning id)
        insert into contacts (email, phone_number, link_precedence, linked_id)
        select 'member' || n || '@x.io', '4242', 'secondary', primary_contact.id
        from primary_contact, generate_series(1, ${CAP - 1}) as n`);
      return post({ email: "one-too-many@x.io", phoneNumber: "4242" });
    },
    "413 payloadTooLarge": () => post({ padding: "x".repeat(BODY_LIMIT_BYTES) }),
    "415 unsupportedMediaType": () =>
      send({ headers: { "Content-Type": "text/plain" }, body: "email=doc@x.io" }),
    "500 internalError": async () => {
      const { db } = await getConnection();
      await db.execute(sql`alter function identify_contact(text, text, jsonb) rename to gone`);
      try {
        return await post({ email: "doc@x.io" });
      } finally {
        await db.execute(sql`alter function gone(text, text, jsonb) rename to identify_contact`);
      }
    },
    "503 databaseUnavailable": () =>
      // Its database is down when a new instance first opens it: nothing listens on port 1.
      postToNewInstance({ DATABASE_URL: "postgres://identify@127.0.0.1:1/identify" }, { key: KEY }),
    "500 misconfigured": () => postToNewInstance({ API_KEYS: " , " }, { key: null }),
  };

  /**
   * POSTs { email: "doc@x.io" } to a new instance of the handler, one that reads the
   * configuration anew with `env` over it (a good configuration is cached per process), as
   * a new Vercel instance would. Its modules are new instances, so nothing after it may meet
   * them: every other situation uses the handler imported above.
   */
  async function postToNewInstance(
    env: Record<string, string>,
    init: { key: string | null },
  ): Promise<Response> {
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    Object.assign(process.env, env);
    vi.resetModules();
    try {
      const fresh = (await import("../api/identify.js")).default;
      return await post({ email: "doc@x.io" }, init, fresh);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  }

  it("answers the lookupByPhone request example with the customer of the newSecondary one", async () => {
    await postExample("newCustomer");
    const added = await contactOf(await postExample("newSecondary"));
    expect(await contactOf(await postExample("lookupByPhone"))).toEqual(added);
  });

  it("has a situation here for every example in the document", () => {
    expect(Object.keys(situations).sort()).toEqual([...documentedExamples].sort());
  });

  it.each(Object.keys(situations))(
    "shows in the %s example what the handler answers",
    async (key) => {
      const [status = "", name = ""] = key.split(" ");
      const content = jsonContent(status);
      const example = content?.examples[name]?.value as Record<string, object> | undefined;
      const response = await situations[key]?.();

      expect(response?.status).toBe(Number(status));
      const body = (await response?.json()) as Record<string, Record<string, unknown>>;
      expect(schemaErrors(content?.schema.$ref ?? "", body)).toEqual([]);
      if (status === "200") {
        // Ids are the database's: the document's stand for any.
        const { contact } = example as { contact: { secondaryContactIds: number[] } };
        expect(body).toEqual({
          contact: {
            ...contact,
            primaryContactId: expect.any(Number),
            primaryContatctId: body.contact?.primaryContactId,
            secondaryContactIds: contact.secondaryContactIds.map(() => expect.any(Number)),
          },
        });
      } else {
        expect(body).toEqual({
          error: { ...example?.error, requestId: response?.headers.get("x-request-id") },
        });
      }
    },
  );

  // The change feed, on the same database and with the same key.
  describe("the OpenAPI examples of GET /identify/changes", () => {
    const changes = committed.paths["/identify/changes"].get;
    const feedResponses = changes.responses as unknown as Record<string, Documented>;
    const examplesOf = (status: string) =>
      feedResponses[status]?.content["application/json"]?.examples ?? {};

    const get = (query = "", init: { key?: string | null; method?: string } = {}) => {
      const { key = KEY, method = "GET" } = init;
      return identify.fetch(
        new Request(`http://localhost/identify/changes${query}`, {
          method,
          headers: key ? { Authorization: `Bearer ${key}` } : {},
        }),
      );
    };
    const post = (body: object) =>
      identify.fetch(
        new Request(IDENTIFY_URL, {
          method: "POST",
          headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
    const workedExample2 = async () => {
      await post({ email: "george@hillvalley.edu", phoneNumber: "919191" });
      await post({ email: "biffsucks@hillvalley.edu", phoneNumber: "717171" });
      await post({ email: "george@hillvalley.edu", phoneNumber: "717171" });
    };
    const feedBody = async (response: Response) =>
      (await response.json()) as { changes: { primaryContactId: number | null }[]; next: string };

    const situations: Record<string, () => Promise<Response>> = {
      // George's two contacts from the beginning: biffsucks' is created, then relinked
      // under george's, and both changes already name george's as its primary.
      "200 merge": async () => {
        await workedExample2();
        return get();
      },
      "200 erased": async () => {
        await post({ email: "george@hillvalley.edu", phoneNumber: "919191" });
        await post({ email: "biffsucks@hillvalley.edu", phoneNumber: "919191" });
        const { next } = await feedBody(await get());
        await forgetCustomer(
          await getDatabase(),
          { phoneNumber: "919191" },
          { requestId: "TICKET-8003" },
        );
        return get(`?after=${next}`);
      },
      "200 end": async () => {
        const { next } = await feedBody(await get());
        return get(`?after=${next}`);
      },
      "400 invalidCursor": () => get("?after=not-a-cursor"),
      "400 invalidLimit": () => get("?limit=0"),
      "401 unauthorized": () => get("", { key: null }),
      "405 methodNotAllowed": () => get("", { method: "POST" }),
      "500 internalError": async () => {
        const { db } = await getConnection();
        const signature = "(bigint, bigint, bigint, integer, integer)";
        await db.execute(sql.raw(`alter function identify_changes${signature} rename to gone`));
        try {
          return await get();
        } finally {
          await db.execute(sql.raw(`alter function gone${signature} rename to identify_changes`));
        }
      },
      "503 databaseUnavailable": async () => {
        const saved = process.env.DATABASE_URL;
        process.env.DATABASE_URL = "postgres://identify@127.0.0.1:1/identify";
        vi.resetModules();
        try {
          const fresh = (await import("../api/identify.js")).default;
          return await fresh.fetch(
            new Request("http://localhost/identify/changes", {
              headers: { Authorization: `Bearer ${KEY}` },
            }),
          );
        } finally {
          if (saved === undefined) delete process.env.DATABASE_URL;
          else process.env.DATABASE_URL = saved;
        }
      },
    };

    it("has response examples that match the schema documented for their status", () => {
      for (const [status, response] of Object.entries(feedResponses)) {
        const content = response.content["application/json"];
        for (const [name, { value }] of Object.entries(content?.examples ?? {})) {
          expect(schemaErrors(content?.schema.$ref ?? "", value), `${status} ${name}`).toEqual([]);
        }
      }
    });

    it("has a situation here for every example of the feed in the document", () => {
      const documented = Object.keys(feedResponses).flatMap((status) =>
        Object.keys(examplesOf(status)).map((name) => `${status} ${name}`),
      );
      expect(Object.keys(situations).sort()).toEqual(documented.sort());
    });

    it.each(Object.keys(situations))(
      "shows in the %s example what the handler answers",
      async (key) => {
        const [status = "", name = ""] = key.split(" ");
        const content = feedResponses[status]?.content["application/json"];
        const example = content?.examples[name]?.value as Record<string, unknown> | undefined;
        const response = await situations[key]?.();

        expect(response?.status).toBe(Number(status));
        const body = (await response?.json()) as Record<string, unknown>;
        expect(schemaErrors(content?.schema.$ref ?? "", body)).toEqual([]);
        if (status === "200") {
          // Ids, times and cursors are the database's: the document's stand for any, but the
          // kinds, and which changes carry no primary, are what the handler answers.
          const shape = (page: unknown) =>
            (page as { changes: { kind: string; primaryContactId: number | null }[] }).changes.map(
              (change) => [change.kind, change.primaryContactId === null],
            );
          expect(shape(body)).toEqual(shape(example));
        } else {
          expect(body).toEqual({
            error: {
              ...(example?.error as object),
              requestId: response?.headers.get("x-request-id"),
            },
          });
        }
      },
    );
  });
});
