/**
 * `npm run relink -- --email <email> | --phone <number> | --id <contact id> | --all
 *  [--dry-run] [--yes]`: makes the customers it reaches what the deployment's recorded
 * guardrails say they are, splitting customers joined only through values now junk and
 * joining customers that share a value no longer junk (lib/relink.ts does the work; the
 * README's "When strangers were merged" says when to run it). It shows what would change
 * first, then asks on a terminal; elsewhere it needs --yes. Its output goes into tickets, so
 * it prints counts and contact ids only, never an email, a phone number or a driver's
 * message, also when it fails. Bad input (an unknown option, no selector, a value nobody
 * has) exits 2 before anything is written. Uses DATABASE_URL, or the embedded database.
 */
import { pathToFileURL } from "node:url";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import {
  changedCustomers,
  formatRelinkResult,
  newRelinkRequestId,
  type RelinkOptions,
  relinkAll,
  relinkCustomer,
} from "../lib/relink.js";
import { loadDotEnv } from "./env.js";
import {
  agreed,
  parseCommandLine,
  SELECTOR_OPTIONS,
  selectorFrom,
  UsageError,
} from "./selector.js";

const USAGE =
  "Usage: npm run relink -- --email <email> | --phone <number> | --id <contact id> | --all [--dry-run] [--yes]";

const HELP = `${USAGE}

Makes the customers that email, phone number or contact id reaches (--all: every customer)
what the guardrails say they are: the contacts linked by shared values that are not junk,
the oldest one the primary. It splits customers joined only through values now junk and
joins customers that share a value no longer junk; each move is recorded ("relinked" in the
change feed, "split from" in npm run explain). It first prints what would change (counts and
contact ids, never an email or a phone number), then relinks.

  --all        every customer, in chunks, with progress; stop it any time and run it again
  --dry-run    print what would change; change nothing
  --yes        relink without asking (needed when stdin is not a terminal)
  --help, -h   this text

Reads DATABASE_URL (or the embedded database), and applies the guardrails (junk lists) that
the deployment recorded in that database, as the function does: set no JUNK_* here (one that
differs from the record is refused). It works on customers over the cap too.
Exit status: 0 done (or nothing to do), 1 refused or failed, 2 bad input.`;

/** A relink is an operator's job: it may wait for a busy customer longer than a request. */
const LOCK_TIMEOUT_MS = 30_000;

/** Bad input: exit status 2, the message quoting no value. */
class BadInput extends Error {}

/** Relinks what the arguments say; returns the exit code. */
async function relink(args: string[]): Promise<number> {
  const values = parseCommandLine(
    args,
    {
      ...SELECTOR_OPTIONS,
      all: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
    },
    USAGE,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const chosen =
    values.email !== undefined || values.phone !== undefined || values.id !== undefined;
  if (values.all && chosen)
    throw new UsageError(`--all takes no --email, --phone or --id. ${USAGE}`);
  const selector = values.all ? undefined : selectorFrom(values, USAGE);
  const dryRun = values["dry-run"];

  const db = await getDatabase();
  // The one place the guardrails come from: those the deployment recorded in this database,
  // so customers become what the function links.
  const { guardrails, source } = await deployedGuardrails(db);
  console.log(`Guardrails: those of ${source}.`);
  const options: RelinkOptions = {
    requestId: newRelinkRequestId(),
    lockTimeoutMs: LOCK_TIMEOUT_MS,
    guardrails,
  };

  if (!selector) {
    if (
      !dryRun &&
      !(await agreed(
        values.yes,
        ["relink", "relinked"],
        "Relink every customer? Type yes to go on: ",
      ))
    ) {
      return 1;
    }
    const done = await relinkAll(
      db,
      { ...options, dryRun },
      (p) =>
        console.log(
          `through contact ${p.throughId} of ${p.lastId}: ${p.customersSeen} customer(s) seen, ` +
            `${p.customersChanged} ${dryRun ? "to change" : "changed"}, ${p.contactsMoved} contact(s) ${dryRun ? "to move" : "moved"}`,
        ),
      (result) => console.log(formatRelinkResult(result)),
    );
    console.log(
      done.customersChanged === 0
        ? "Nothing to relink: every customer is already as the guardrails say. Nothing was written."
        : `${dryRun ? "Would relink" : "Relinked"} ${done.customersChanged} customer(s), moving ${done.contactsMoved} contact(s)${dryRun ? ". Dry run: nothing was written." : `, request ${options.requestId}.`}`,
    );
    return 0;
  }

  const preview = await relinkCustomer(db, selector, { ...options, dryRun: true });
  if (preview.customers.length === 0)
    throw new BadInput("No live contact matches; nothing was relinked.");
  console.log(formatRelinkResult(preview));
  if (dryRun || changedCustomers(preview).length === 0) return 0;
  if (!(await agreed(values.yes, ["relink", "relinked"], "Type yes to relink: "))) return 1;
  // Read again under the customers' locks: what changes is what they are by then.
  const result = await relinkCustomer(db, selector, options);
  console.log(formatRelinkResult(result));
  if (changedCustomers(result).length > 0) console.log(`Request ${options.requestId}.`);
  return 0;
}

/**
 * `npm run relink` with `args` (what follows `--`); resolves to its exit code: 0, 2 on bad
 * input (nothing written), 1 on a failure, having printed why.
 */
export async function main(args: string[]): Promise<number> {
  loadDotEnv();
  try {
    return await relink(args);
  } catch (error) {
    if (error instanceof UsageError || error instanceof BadInput) {
      console.error(error.message);
      return 2;
    }
    // describeError keeps the reasons and drops what can quote a value (Drizzle's parameters).
    console.error(`relink failed: ${describeError(error)}`);
    return 1;
  } finally {
    await closeDatabase();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2));
}
