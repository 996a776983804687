/**
 * `npm run forget -- --email <email> | --phone <number> | --id <contact id>
 *  [--dry-run] [--yes] [--request-id <ticket>] [--over-cap]`: erases the whole customer that
 * identifier belongs to (lib/forget.ts does the work; docs/privacy.md says what goes and what
 * stays). It always shows what it would erase first, then asks on a terminal; elsewhere it
 * needs --yes. Its output is pasted into tickets, so it prints counts and ids only, never an
 * email, a phone number or a driver's message (which quotes the query's values), also when it
 * fails. Uses DATABASE_URL, or the embedded database when it is unset.
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { DatabaseUnavailableError } from "../lib/db/errors.js";
import { ConfigError } from "../lib/errors.js";
import {
  CustomerTooLargeError,
  checkRequestId,
  ForgetError,
  type ForgetOptions,
  type ForgetResult,
  forgetCustomer,
  formatForgetResult,
  InvalidRequestIdError,
  REQUEST_ID_RULE,
} from "../lib/forget.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import { loadDotEnv } from "./env.js";
import {
  agreed,
  parseCommandLine,
  SELECTOR_OPTIONS,
  selectorFrom,
  UsageError,
} from "./selector.js";

const USAGE =
  "Usage: npm run forget -- --email <email> | --phone <number> | --id <contact id> [--dry-run] [--yes] [--request-id <ticket>] [--over-cap]";

const OVER_CAP_FLAG = "--over-cap";

const HELP = `${USAGE}

Erases the whole customer that email, phone number or contact id belongs to: its contacts,
the soft-deleted ones that were part of it, and their audit events, leaving one erasure
record of ids and counts (docs/privacy.md). It first prints what it would erase (counts and
contact ids, never an email or a phone number), then erases.

  --dry-run             print what would be erased; change nothing
  --yes                 erase without asking (needed when stdin is not a terminal)
  --request-id <ticket> the ticket, recorded for ever on the erasure record (the rule
                        is below); default forget-<random uuid>
  ${OVER_CAP_FLAG}            erase a customer of more contacts than the cap
                        (the deployment's MAX_CONTACTS_PER_CUSTOMER), which is refused
                        otherwise; its search then has no cap. A customer that large
                        may take minutes: set DB_QUERY_TIMEOUT_MS=0 for the run
  --help, -h            this text

A request id must be ${REQUEST_ID_RULE}.

Reads DATABASE_URL (or the embedded database), and applies the guardrails (junk lists and
the cap) that the deployment recorded in that database, as the function does: set no
JUNK_* or MAX_CONTACTS_PER_CUSTOMER here (one that differs from the record is refused).`;

// An erasure is an operator's job, not a request's: it may wait for a busy customer longer.
const LOCK_TIMEOUT_MS = 30_000;

const sameContacts = (a: ForgetResult, b: ForgetResult) =>
  a.contactIds.join() === b.contactIds.join();

/** Shows what would go, erases after confirmation (or --yes); returns the exit code. */
async function forget(args: string[]): Promise<number> {
  const values = parseCommandLine(
    args,
    {
      ...SELECTOR_OPTIONS,
      "dry-run": { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
      "request-id": { type: "string" },
      "over-cap": { type: "boolean", default: false },
    },
    USAGE,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const selector = selectorFrom(values, USAGE);
  const requestId = values["request-id"] ?? `forget-${randomUUID()}`;
  // Before the database is touched: the erasure record keeps it for ever.
  checkRequestId(requestId);
  const db = await getDatabase();
  // The one place the guardrails (junk lists and the cap) come from: those the deployment
  // recorded in this database, so the customer erased is the one the function links.
  const { guardrails, source } = await deployedGuardrails(db);
  console.log(`Guardrails: those of ${source}.`);
  const options: ForgetOptions = {
    requestId,
    lockTimeoutMs: LOCK_TIMEOUT_MS,
    guardrails,
    overCap: values["over-cap"],
  };

  const preview = await forgetCustomer(db, selector, { ...options, dryRun: true });
  console.log(formatForgetResult(preview, requestId));
  if (values["dry-run"] && preview.contactIds.length > 0) console.log("Dry run: nothing erased.");
  if (values["dry-run"] || preview.contactIds.length === 0) return 0;
  if (
    !(await agreed(values.yes, ["erase", "erased"], "This cannot be undone. Type yes to erase: "))
  )
    return 1;
  // The customer is found again, under its locks: what goes is what it is by then.
  const result = await forgetCustomer(db, selector, options);
  console.log(formatForgetResult(result, requestId));
  if (!sameContacts(preview, result)) {
    console.log("The customer changed after the preview: the ids erased are those just above.");
  }
  return 0;
}

/**
 * What to print for a failure: messages written to be printed as they are; any other error
 * (a driver's, Drizzle's, which may quote the query's parameters, the values being erased)
 * through describeError, which keeps its reasons and drops every value.
 */
function describeFailure(error: unknown): string {
  if (error instanceof CustomerTooLargeError) {
    return `${error.message}. To erase it anyway, run again with ${OVER_CAP_FLAG}: its search then has no cap.`;
  }
  if (error instanceof InvalidRequestIdError) return `--request-id: ${error.message}.`;
  if (
    error instanceof UsageError ||
    error instanceof ForgetError ||
    error instanceof ConfigError ||
    error instanceof DatabaseUnavailableError
  ) {
    return error.message;
  }
  return `forget failed: ${describeError(error)}`;
}

/**
 * `npm run forget` with `args` (what follows `--`); resolves to its exit code, having printed
 * why when it is not 0.
 */
export async function main(args: string[]): Promise<number> {
  loadDotEnv();
  try {
    return await forget(args);
  } catch (error) {
    console.error(describeFailure(error));
    return 1;
  } finally {
    await closeDatabase();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2));
}
