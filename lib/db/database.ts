/**
 * The driver-agnostic database types, in a module of their own so that the driver modules
 * and the connection module (client.ts, which re-exports them) do not import each other.
 */
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema.js";

/** The driver-agnostic database type every query function takes. */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** What a driver module hands back: the Drizzle handle and how to close it. */
export interface DriverConnection {
  readonly db: Database;
  close(): Promise<void>;
}
