/** A database URL parsed as the configuration parses it, for tests of what reads the parse. */
import { type DatabaseUrl, parseDatabaseUrl } from "../../lib/db/database-url.js";

/** `url` parsed as `variable` holds it; throws the reason if the configuration would refuse it. */
export function parsedUrl(url: string, variable = "DATABASE_URL"): DatabaseUrl {
  const result = parseDatabaseUrl(variable, url);
  if (typeof result === "string") throw new Error(result);
  return result;
}
