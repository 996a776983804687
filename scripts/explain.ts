/**
 * `npm run explain -- --email <email> | --phone <number> | --id <contact id>`: prints the
 * customer those identify, what links its contacts, and its history from the audit trail.
 * Uses DATABASE_URL, or the embedded database when it is unset, and the guardrails the
 * deployment recorded in that database (lib/guardrails.ts deployedGuardrails), so that it
 * links contacts exactly as the deployed function does. A failure prints its reason only
 * (lib/redact.ts), never the identifier it was given.
 */
import { pathToFileURL } from "node:url";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { explainCustomer, formatExplanation } from "../lib/explain.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine, SELECTOR_OPTIONS, selectorFrom } from "./selector.js";

const USAGE = "Usage: npm run explain -- --email <email> | --phone <number> | --id <contact id>";

const HELP = `${USAGE}

Prints the customer that email, phone number or contact id belongs to, what links its
contacts, and its history. Reads DATABASE_URL (or the embedded database), and links
contacts with the guardrails the deployment recorded there; exits 2 when nothing matches.`;

/**
 * `npm run explain` with `args` (what follows `--`); resolves to its exit code: 0, 2 when no
 * live contact matches, 1 on a failure, whose reason it prints.
 */
export async function main(args: string[]): Promise<number> {
  loadDotEnv();
  let exitCode = 0;
  try {
    const values = parseCommandLine(args, SELECTOR_OPTIONS, USAGE);
    if (values.help) console.log(HELP);
    else {
      const selector = selectorFrom(values, USAGE);
      const db = await getDatabase();
      const { guardrails } = await deployedGuardrails(db);
      const explanation = await explainCustomer(db, selector, guardrails);
      if (explanation) console.log(formatExplanation(explanation));
      else {
        console.log("No live contact matches.");
        exitCode = 2;
      }
    }
  } catch (error) {
    // describeError, never error.message: Drizzle's message ends with the bound values, the
    // very email or phone number asked about.
    console.error(describeError(error));
    exitCode = 1;
  } finally {
    await closeDatabase();
  }
  return exitCode;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2));
}
