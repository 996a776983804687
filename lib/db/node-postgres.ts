/**
 * node-postgres for every PostgreSQL server that is not Neon's: a plain TCP connection, with
 * TLS exactly as the URL's `sslmode` asks (libpq's meanings: `require` encrypts, `verify-full`
 * also checks the certificate and host name, `disable` or no sslmode sends in clear).
 */
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { DriverConnection } from "./database.js";
import { type PoolSettings, poolOptions, watchPool } from "./pool.js";
import * as schema from "./schema.js";

/** Opens a node-postgres pool for `url`. */
export function openNodePostgres(url: string, pool: PoolSettings): DriverConnection {
  const client = new pg.Pool(poolOptions(withLibpqSslModes(url), pool));
  watchPool(client);
  return { db: drizzle({ client, schema }), close: () => client.end() };
}

/**
 * node-postgres reads `sslmode=require` as verify-full unless told to follow libpq, which
 * would refuse the self-signed certificates that `require` exists for; with the flag every
 * sslmode means what PostgreSQL's documentation says it means.
 */
function withLibpqSslModes(url: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has("sslmode") && !parsed.searchParams.has("uselibpqcompat")) {
    parsed.searchParams.set("uselibpqcompat", "true");
  }
  return parsed.toString();
}
