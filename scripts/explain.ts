/**
 * `npm run explain -- --email <email> | --phone <number> | --id <contact id>`: prints the
 * customer those identify, what links its contacts, and its history from the audit trail.
 * Uses DATABASE_URL, or the embedded database when it is unset, and the guardrails the
 * deployment recorded in that database (lib/guardrails.ts deployedGuardrails), so that it
 * links contacts exactly as the deployed function does.
 */
import { parseArgs } from "node:util";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { explainCustomer, formatExplanation } from "../lib/explain.js";
import { deployedGuardrails } from "../lib/guardrails.js";
import { loadDotEnv } from "./env.js";
import { SELECTOR_OPTIONS, selectorFrom } from "./selector.js";

loadDotEnv();

const USAGE = "Usage: npm run explain -- --email <email> | --phone <number> | --id <contact id>";

try {
  const { values } = parseArgs({ args: process.argv.slice(2), options: SELECTOR_OPTIONS });
  const selector = selectorFrom(values, USAGE);
  const db = await getDatabase();
  const { guardrails } = await deployedGuardrails(db);
  const explanation = await explainCustomer(db, selector, guardrails);
  if (explanation) console.log(formatExplanation(explanation));
  else {
    console.log("No live contact matches.");
    process.exitCode = 2;
  }
} catch (error) {
  console.error(String(error instanceof Error ? error.message : error));
  process.exitCode = 1;
} finally {
  await closeDatabase();
}
