/**
 * describeError, the one describer of failures for command-line output (npm run import,
 * npm run db:migrate): it keeps the reasons an operator needs and drops everything that can
 * hold personal data or a secret. The errors are the drivers' and Drizzle's own classes, in
 * the chain they build; the commands' real output is tested in
 * test/import-output.postgres.test.ts and test/import-cli.test.ts.
 */
import { DrizzleQueryError } from "drizzle-orm/errors";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { describeError } from "../lib/redact.js";

/** A server error as node-postgres builds it from the server's ErrorResponse. */
function serverError(code: string, message: string, fields: Partial<pg.DatabaseError> = {}) {
  const error = new pg.DatabaseError(message, message.length, "error");
  return Object.assign(error, { severity: "ERROR", code, ...fields });
}

/** What Drizzle throws for a failed statement: the statement, every value, the cause. */
const failedQuery = (cause: unknown, params: unknown[] = ["doc@example.com", "5550119551"]) =>
  new DrizzleQueryError(
    "insert into contacts (email, phone_number) values ($1, $2)",
    params,
    cause as Error,
  );

describe("describeError", () => {
  it("gives the database's message and SQLSTATE under Drizzle's wrapper, without the statement or its values", () => {
    const error = failedQuery(
      serverError("23505", 'duplicate key value violates unique constraint "contacts_pkey"', {
        detail: "Key (email)=(doc@example.com) already exists.",
        where: "SQL statement \"insert … 'doc@example.com'\"",
      }),
    );
    const text = describeError(error);
    expect(text).toBe(
      'duplicate key value violates unique constraint "contacts_pkey" (SQLSTATE 23505)',
    );
  });

  it("redacts the value a data exception quotes in its message", () => {
    const error = failedQuery(
      serverError("22P02", 'invalid input syntax for type integer: "doc@example.com"'),
    );
    expect(describeError(error)).toBe(
      'invalid input syntax for type integer: "[redacted]" (SQLSTATE 22P02)',
    );
  });

  it("keeps the names other errors quote: a relation, a user", () => {
    const error = serverError("28P01", 'password authentication failed for user "legacy"');
    expect(describeError(error)).toBe(
      'password authentication failed for user "legacy" (SQLSTATE 28P01)',
    );
  });

  it("says only that a query failed when Drizzle's error has no cause", () => {
    expect(describeError(failedQuery(undefined))).toBe("a database query failed");
  });

  it("keeps the driver's own reason, such as a timeout, under Drizzle's wrapper", () => {
    expect(describeError(failedQuery(new Error("Query read timeout")))).toBe("Query read timeout");
  });

  it("removes a connection string's password from any message", () => {
    const error = new Error(
      "could not parse postgres://legacy:hunter2-secret@db.example:5432/legacy nor password=hunter3 host=x",
    );
    const text = describeError(error);
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("hunter3");
    expect(text).toContain("postgres://legacy:[redacted]@db.example:5432/legacy");
  });

  it("gives every address a refused connection tried, not an empty message", () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: "ECONNREFUSED" });
    const error = new AggregateError([refused("::1:5432"), refused("127.0.0.1:5432")], "");
    expect(describeError(error)).toBe(
      "connect ECONNREFUSED ::1:5432: connect ECONNREFUSED 127.0.0.1:5432",
    );
  });

  it("stays one short line whatever the message holds", () => {
    const error = new Error(`${"x".repeat(5_000)}\nsecond line with doc@example.com`);
    const text = describeError(error);
    expect(text).not.toContain("\n");
    expect(text).not.toContain("doc@example.com");
    expect(text.length).toBeLessThanOrEqual(1_000);
  });
});
