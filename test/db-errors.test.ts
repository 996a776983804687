/**
 * What a database failure means (lib/db/errors.ts), on errors of the shapes the drivers
 * throw: node-postgres's DatabaseError for the server's ErrorResponse, a Node system error
 * (an errno in `code`) for a broken connection, and Drizzle's wrapper around either.
 */
import { DrizzleQueryError } from "drizzle-orm/errors";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { sqlState } from "../lib/db/errors.js";

/** A server error as node-postgres builds it from the server's ErrorResponse. */
function serverError(code: string, message: string) {
  const error = new pg.DatabaseError(message, message.length, "error");
  return Object.assign(error, { severity: "ERROR", code });
}

/** A Node system error, as a socket write to a closed connection raises it. */
const systemError = (code: string, cause?: unknown) =>
  Object.assign(new Error(`write ${code}`, { cause }), { code, syscall: "write" });

describe("sqlState", () => {
  it("finds the SQLSTATE under Drizzle's wrapper", () => {
    const error = new DrizzleQueryError(
      "select 1",
      [],
      serverError("57014", "canceling statement due to statement timeout"),
    );
    expect(sqlState(error)).toBe("57014");
  });

  it("never takes a Node errno of five letters for a SQLSTATE", () => {
    expect(sqlState(systemError("EPIPE"))).toBeUndefined();
  });

  it("passes over an errno to the SQLSTATE under it", () => {
    const error = systemError("EPIPE", serverError("57P01", "terminating connection"));
    expect(sqlState(error)).toBe("57P01");
  });
});
