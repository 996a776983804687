/**
 * node-postgres for every PostgreSQL server that is not Neon's: a plain TCP connection, with
 * TLS exactly as the URL's `sslmode` says, in libpq's meanings: `disable` sends in clear,
 * `allow` and `prefer` (also a URL without sslmode, as libpq's default) follow what the server
 * supports, `require` encrypts, `verify-ca` and `verify-full` also check the certificate (and
 * the host name). sslmode.ts settles allow and prefer when the pool opens.
 */
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { DriverConnection } from "./database.js";
import type { DatabaseUrl } from "./database-url.js";
import { type PoolSettings, poolOptions, watchPool } from "./pool.js";
import * as schema from "./schema.js";
import { settleSslMode } from "./sslmode.js";

/**
 * Opens a node-postgres pool for `url`. Under sslmode `allow` or `prefer` it first asks the
 * server whether to use TLS, within `pool.connectTimeoutMs`, and throws if it cannot.
 */
export async function openNodePostgres(
  url: DatabaseUrl,
  pool: PoolSettings,
): Promise<DriverConnection> {
  const settled = await settleSslMode(url, pool.connectTimeoutMs);
  const client = new pg.Pool(poolOptions(settled, pool));
  watchPool(client);
  return { db: drizzle({ client, schema }), close: () => client.end() };
}
