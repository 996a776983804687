/**
 * The query helpers every query module uses: run a raw statement through Drizzle and get its
 * rows, whichever driver is underneath (they disagree on the result's shape), and pass an
 * array as one parameter.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "./database.js";

/** Anything that runs statements: the database, or a transaction inside it. */
type Executor = Pick<Database, "execute">;

/** Runs a raw statement and returns its rows. */
export async function queryRows<Row>(db: Executor, statement: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(statement);
  const rows = (result as { rows?: unknown }).rows;
  if (!Array.isArray(rows)) throw new Error("The database driver returned no rows array");
  return rows as Row[];
}

/** PostgreSQL element types that sqlArray passes. */
type SqlArrayType = "integer" | "text" | "boolean" | "timestamptz" | "bigint";

/**
 * An array as ONE bound parameter of type `type[]`: the one way a statement takes an array
 * (`= any(…)`, `unnest(…)`, a subscript). Drizzle spreads a bare JS array into a list of
 * parameters (`($1, $2, …)`, as its `inArray` does), which is neither an array nor bounded in
 * size; every driver (node-postgres, Neon, PGlite) serializes an array parameter as an array
 * literal. The SQL functions' options are the exception: their junk lists travel inside the
 * one options jsonb (lib/db/sql-contract.ts), the functions' single argument for every option.
 */
export function sqlArray(values: readonly unknown[], type: SqlArrayType): SQL {
  return sql`${sql.param(values)}::${sql.raw(type)}[]`;
}
