/**
 * `npm run forget -- --email <email> | --phone <number> | --id <contact id>
 *  [--dry-run] [--yes] [--request-id <ticket>]`: erases the whole customer that identifier
 * belongs to (lib/forget.ts does the work; docs/privacy.md says what goes and what stays).
 * Asks for confirmation on a terminal; elsewhere it needs --yes. Prints counts and ids,
 * never an email or a phone number: its output is pasted into tickets. Uses DATABASE_URL, or
 * the embedded database when it is unset.
 */
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import type { CustomerSelector } from "../lib/explain.js";
import { type ForgetOptions, forgetCustomer, formatForgetResult } from "../lib/forget.js";
import { getGuardrails } from "../lib/guardrails.js";
import { loadDotEnv } from "./env.js";
import { SELECTOR_OPTIONS, selectorFrom } from "./selector.js";

loadDotEnv();

const USAGE =
  "Usage: npm run forget -- --email <email> | --phone <number> | --id <contact id> [--dry-run] [--yes] [--request-id <ticket>]";

// An erasure is an operator's job, not a request's: it may wait for a busy customer longer.
const LOCK_TIMEOUT_MS = 30_000;

/** Asks on the terminal; true only for an explicit "yes". */
async function confirmed(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await terminal.question(question)).trim().toLowerCase() === "yes";
  } finally {
    terminal.close();
  }
}

/** Erases, after confirmation unless --yes; returns the exit code. */
async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...SELECTOR_OPTIONS,
      "dry-run": { type: "boolean", default: false },
      yes: { type: "boolean", default: false },
      "request-id": { type: "string" },
    },
  });
  const selector: CustomerSelector = selectorFrom(values, USAGE);
  const requestId = values["request-id"] ?? `forget-${randomUUID()}`;
  const db = await getDatabase();
  const options: ForgetOptions = {
    requestId,
    lockTimeoutMs: LOCK_TIMEOUT_MS,
    guardrails: getGuardrails(),
  };

  if (values["dry-run"] || !values.yes) {
    const preview = await forgetCustomer(db, selector, { ...options, dryRun: true });
    console.log(formatForgetResult(preview, requestId));
    if (values["dry-run"] && preview.contactIds.length > 0) console.log("Dry run: nothing erased.");
    if (values["dry-run"] || preview.contactIds.length === 0) return 0;
    if (!process.stdin.isTTY) {
      console.error(
        "Refusing to erase without confirmation: stdin is not a terminal. Pass --yes to erase from a script.",
      );
      return 1;
    }
    if (!(await confirmed("This cannot be undone. Type yes to erase: "))) {
      console.log("Cancelled: nothing was erased.");
      return 1;
    }
  }
  // The customer is found again, under its locks: what goes is what it is by then.
  console.log(formatForgetResult(await forgetCustomer(db, selector, options), requestId));
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // parseArgs quotes a stray argument, which may be the very email being erased.
  const unreadable = String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS");
  console.error(
    unreadable
      ? `Unreadable arguments (not repeated here: they may be personal data). ${USAGE}`
      : String(error instanceof Error ? error.message : error),
  );
  process.exitCode = 1;
} finally {
  await closeDatabase();
}
