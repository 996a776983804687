/**
 * `npm run import -- --from <postgres url>`: imports the contacts of the service identify
 * replaces into identify's database (DATABASE_URL, or the embedded database when it is
 * unset), migrating it first, then prints what was imported and repaired. The source is only
 * read. Safe to run again: contacts already imported are left as they are, and contacts an
 * erasure took stay out. See lib/import.ts. It settles with the guardrails the deployment
 * recorded in the target (lib/guardrails.ts deployedGuardrails), as the function links, and
 * refuses to migrate the production database unless given --migrate-production.
 * Its output is pasted into tickets and CI logs, so a failure prints the reason only, never a
 * query's bound values (the source's emails and phone numbers) or a password.
 */
import { pathToFileURL } from "node:url";
import { getConfig, readConfig } from "../lib/config.js";
import { type Connection, closeDatabase, getConnection, openConnection } from "../lib/db/client.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { formatImportReport, importFromLegacy } from "../lib/import.js";
import { describeError } from "../lib/redact.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine, UsageError } from "./selector.js";

const USAGE =
  "Usage: npm run import -- --from postgres://user:password@host:5432/database [--migrate-production]";

/** --help: the usage, and what a newcomer needs to know before pointing it at a database. */
const HELP = `${USAGE}

Copies the old service's Contact table into identify's database (DATABASE_URL, or the embedded
database when it is unset; migrated first), then prints what it imported and repaired. The
source is only read. Either shape of the table: contact with lower-case columns (phonenumber,
linkedid, linkprecedence, createdat, ...), or Prisma's quoted "Contact" ("phoneNumber",
"linkedId", "linkPrecedence", "createdAt", ...). Safe to run again. docs/import.md says more.`;

/** A refusal of the command line: main prints it with the usage and exits 1. */
class Refusal extends Error {}

function fail(message: string): never {
  throw new Refusal(message);
}

/** Imports as the module comment says; resolves to the exit code. @throws Refusal. */
async function runImport(args: string[]): Promise<number> {
  let from: string | undefined;
  let migrateProduction = false;
  try {
    // parseCommandLine, never parseArgs's own message: that quotes the argument it cannot
    // read, which may be a URL with a password.
    const values = parseCommandLine(
      args,
      { from: { type: "string" }, "migrate-production": { type: "boolean", default: false } },
      USAGE,
    );
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    from = values.from?.trim();
    migrateProduction = values["migrate-production"];
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    // Its message ends with the usage, which main prints after every refusal.
    fail("Unreadable arguments (not repeated here: they may hold a password).");
  }
  if (!from) {
    fail("Missing --from: the PostgreSQL URL of the old service's database (its Contact table).");
  }
  if (!URL.canParse(from) || !/^postgres(ql)?:$/.test(new URL(from).protocol)) {
    // Never echo the value: it is a connection string, and may carry a password.
    const scheme = URL.canParse(from) ? `a ${new URL(from).protocol}// URL` : "no URL";
    fail(`--from must be a postgres:// URL; it is ${scheme}.`);
  }

  // The import's statements (settling a whole table) may run far longer than a request's; the
  // per-query timeout applies only when DB_QUERY_TIMEOUT_MS is set explicitly.
  process.env.DB_QUERY_TIMEOUT_MS ??= "0";

  let source: Connection | undefined;
  let exitCode = 0;
  try {
    const { DATABASE_URL, PGLITE_DIR } = getConfig();
    const into = DATABASE_URL
      ? `DATABASE_URL (${DATABASE_URL.host}:${DATABASE_URL.port}/${DATABASE_URL.database})`
      : `the embedded database (${PGLITE_DIR})`;
    console.log(`Importing from ${new URL(from).host} into ${into}`);
    const target = await getConnection();
    await target.migrate({ allowProduction: migrateProduction });
    const { guardrails, source: settings } = await deployedGuardrails(target.db);
    console.log(`Guardrails: those of ${settings}.`);
    source = await openConnection(readConfig({ DATABASE_URL: from }));
    const report = await importFromLegacy(target.db, source.db, {
      guardrails,
      onProgress: (rowsRead) => console.log(`  read ${rowsRead} rows`),
    });
    console.log(formatImportReport(report));
  } catch (error) {
    // describeError, never error.message: Drizzle's message lists every bound value, and a
    // failed batch is thousands of the source's emails and phone numbers.
    console.error(`Import failed; nothing was imported: ${describeError(error)}`);
    exitCode = 1;
  } finally {
    // A pool waits for its connections to come back before it ends, and one whose statement
    // hit DB_QUERY_TIMEOUT_MS may never come back: the import has said what happened, so it
    // gives the pools a few seconds, then exits whatever they do.
    const closed = Promise.all([source?.close(), closeDatabase()]).catch(() => undefined);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  }
  return exitCode;
}

/**
 * `npm run import` with `args` (what follows `--`); resolves to its exit code, having printed
 * why when it is not 0.
 */
export async function main(args: string[]): Promise<number> {
  loadDotEnv();
  try {
    return await runImport(args);
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    console.error(`${error.message}\n${USAGE}`);
    return 1;
  }
}

// It exits once done, whatever its pools still hold open (see the end of runImport).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exit(await main(process.argv.slice(2)));
}
