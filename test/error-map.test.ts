/**
 * The one error map (lib/errors.ts's toErrorResponse and its SQLSTATE table), on errors of the
 * shapes the drivers throw: node-postgres's DatabaseError under Drizzle's wrapper, a Node
 * system error, several addresses tried at once (AggregateError). Each SQLSTATE answers what
 * the README's error table promises, and nothing of the database's message reaches the client.
 */
import { DrizzleQueryError } from "drizzle-orm/errors";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { SQLSTATE_CUSTOMER_TOO_LARGE } from "../lib/db/sql-contract.js";
import { ConfigError, toErrorResponse } from "../lib/errors.js";

/** A server error as node-postgres builds it, wrapped as Drizzle throws it. */
function failedQuery(code: string, message: string) {
  const error = Object.assign(new pg.DatabaseError(message, message.length, "error"), { code });
  return new DrizzleQueryError("select identify_contact($1, $2, $3)", ["a@x.io"], error);
}

/** The status, code and message a client gets for `error`, and the Retry-After it says. */
async function answer(error: unknown, context = {}) {
  const { response } = toErrorResponse(error, "r1", context);
  const body = (await response.json()) as { error: { code: string; message: string } };
  return {
    status: response.status,
    code: body.error.code,
    message: body.error.message,
    retryAfter: response.headers.get("Retry-After"),
  };
}

describe("the error map", () => {
  it("answers IDC01 with 409 customer_too_large naming the cap the handler applies", async () => {
    const error = failedQuery(
      SQLSTATE_CUSTOMER_TOO_LARGE,
      "the customer has more than 2 contacts, the cap",
    );
    expect(await answer(error, { maxContacts: 2 })).toMatchObject({
      status: 409,
      code: "customer_too_large",
      message: expect.stringContaining("more than 2 contacts (MAX_CONTACTS_PER_CUSTOMER)"),
    });
  });

  it("answers a lock timeout (55P03) with 503 and Retry-After", async () => {
    const error = failedQuery("55P03", "canceling statement due to lock timeout");
    expect(await answer(error)).toMatchObject({
      status: 503,
      code: "database_unavailable",
      retryAfter: "1",
    });
  });

  it("answers every SQLSTATE of class 08, connection exception, with 503", async () => {
    const error = failedQuery("08P01", "protocol violation");
    expect(await answer(error)).toMatchObject({ status: 503, code: "database_unavailable" });
  });

  it("answers a SQLSTATE the table does not list with 500 internal_error, quoting nothing", async () => {
    const error = failedQuery("23505", 'duplicate key value violates "contacts_email" (a@x.io)');
    const result = await answer(error);
    expect(result).toMatchObject({ status: 500, code: "internal_error" });
    expect(JSON.stringify(result)).not.toContain("a@x.io");
  });

  it("answers a SQLSTATE inside an AggregateError of several addresses with its own answer", async () => {
    const starting = Object.assign(new Error("the database system is starting up"), {
      code: "57P03",
    });
    const error = new AggregateError([new Error("refused"), starting], "connect failed");
    expect(await answer(error)).toMatchObject({ status: 503, code: "database_unavailable" });
  });

  it("answers a database that cannot be reached (an errno, no SQLSTATE) with 503", async () => {
    const error = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
      code: "ECONNREFUSED",
    });
    expect(await answer(error)).toMatchObject({ status: 503, code: "database_unavailable" });
  });

  it("answers an invalid setting with 500 misconfigured and logs which one", async () => {
    const { response, log } = toErrorResponse(new ConfigError("API_KEYS: names no key"), "r1");
    expect(response.status).toBe(500);
    expect(log).toMatchObject({ code: "misconfigured", error: "API_KEYS: names no key" });
  });
});
