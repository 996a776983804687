/**
 * `npm run explain -- --email <email> | --phone <number> | --id <contact id>`: prints the
 * customer those identify, what links its contacts, and its history from the audit trail.
 * Uses DATABASE_URL, or the embedded database when it is unset, and the guardrails the
 * deployment recorded in that database (lib/guardrails.ts deployedGuardrails), so that it
 * links contacts exactly as the deployed function does. A failure prints its reason only
 * (lib/redact.ts), never the identifier it was given.
 */
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { explainCustomer, formatExplanation } from "../lib/explain.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { describeError } from "../lib/redact.js";
import { loadDotEnv } from "./env.js";
import { parseCommandLine, SELECTOR_OPTIONS, selectorFrom } from "./selector.js";

loadDotEnv();

const USAGE = "Usage: npm run explain -- --email <email> | --phone <number> | --id <contact id>";

const HELP = `${USAGE}

Prints the customer that email, phone number or contact id belongs to, what links its
contacts, and its history. Reads DATABASE_URL (or the embedded database), and links
contacts with the guardrails the deployment recorded there; exits 2 when nothing matches.`;

try {
  const values = parseCommandLine(process.argv.slice(2), SELECTOR_OPTIONS, USAGE);
  if (values.help) console.log(HELP);
  else {
    const selector = selectorFrom(values, USAGE);
    const db = await getDatabase();
    const { guardrails } = await deployedGuardrails(db);
    const explanation = await explainCustomer(db, selector, guardrails);
    if (explanation) console.log(formatExplanation(explanation));
    else {
      console.log("No live contact matches.");
      process.exitCode = 2;
    }
  }
} catch (error) {
  // describeError, never error.message: Drizzle's message ends with the bound values, the
  // very email or phone number asked about.
  console.error(describeError(error));
  process.exitCode = 1;
} finally {
  await closeDatabase();
}
