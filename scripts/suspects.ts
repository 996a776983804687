/**
 * `npm run suspects [-- --limit N]`: the values most likely to join strangers (the emails and
 * phone numbers the most live contacts share, marked when already junk) and the customers
 * near the cap (lib/suspects.ts), so an operator knows what to list in JUNK_EMAILS or
 * JUNK_PHONE_NUMBERS. It prints values, as `npm run explain` does. Uses DATABASE_URL, or the
 * embedded database, and the guardrails the deployment recorded there.
 */
import { pathToFileURL } from "node:url";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import { findSuspects, formatSuspects } from "../lib/suspects.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine, UsageError } from "./selector.js";

const USAGE = "Usage: npm run suspects [-- --limit <1-1000>]";

const HELP = `${USAGE}

Lists the emails and phone numbers carried by the most live contacts (default 20), each
with its count and the customer it sits in, marked "junk already" when the deployment's
guardrails list it; then the customers at or above 80% of the cap, with their sizes. List a
value that joins strangers in JUNK_EMAILS or JUNK_PHONE_NUMBERS, deploy, then run
npm run relink (README: "When strangers were merged"). Reads DATABASE_URL (or the embedded
database) and the guardrails the deployment recorded there. Exit status 2 on bad input.`;

const MAX_LIMIT = 1000;

/** Lists the suspects; returns the exit code. */
async function suspects(args: string[]): Promise<number> {
  const values = parseCommandLine(args, { limit: { type: "string", default: "20" } }, USAGE);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIMIT}. ${USAGE}`);
  }
  const db = await getDatabase();
  const { guardrails, source } = await deployedGuardrails(db);
  console.log(`Guardrails: those of ${source}.\n`);
  console.log(formatSuspects(await findSuspects(db, limit, guardrails)));
  return 0;
}

/**
 * `npm run suspects` with `args` (what follows `--`); resolves to its exit code: 0, 2 on bad
 * input, 1 on a failure, having printed why.
 */
export async function main(args: string[]): Promise<number> {
  loadDotEnv();
  try {
    return await suspects(args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    console.error(`suspects failed: ${describeError(error)}`);
    return 1;
  } finally {
    await closeDatabase();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2));
}
