/**
 * `npm run explain -- --email <email> | --phone <number> | --id <contact id>`: prints the
 * customer those identify, what links its contacts, and its history from the audit trail.
 * Uses DATABASE_URL, or the embedded database when it is unset.
 */
import { parseArgs } from "node:util";
import * as v from "valibot";
import { closeDatabase, getDatabase } from "../lib/db/client.js";
import { type CustomerSelector, explainCustomer, formatExplanation } from "../lib/explain.js";
import { getGuardrails } from "../lib/guardrails.js";
import { EmailSchema, PhoneNumberSchema } from "../lib/input.js";
import { loadDotEnv } from "./env.js";

loadDotEnv();

const USAGE = "Usage: npm run explain -- --email <email> | --phone <number> | --id <contact id>";

function selectorFrom(args: string[]): CustomerSelector {
  const { values } = parseArgs({
    args,
    options: { email: { type: "string" }, phone: { type: "string" }, id: { type: "string" } },
  });
  const given = [values.email, values.phone, values.id].filter((value) => value !== undefined);
  if (given.length !== 1) throw new Error(USAGE);
  if (values.id !== undefined) {
    const id = Number(values.id);
    if (!Number.isSafeInteger(id) || id < 1) throw new Error(`--id must be a contact id. ${USAGE}`);
    return { id };
  }
  if (values.email !== undefined) {
    const email = v.parse(EmailSchema, values.email);
    if (email === null) throw new Error(USAGE);
    return { email };
  }
  const phoneNumber = v.parse(PhoneNumberSchema, values.phone);
  if (phoneNumber === null) throw new Error(USAGE);
  return { phoneNumber };
}

try {
  const selector = selectorFrom(process.argv.slice(2));
  const explanation = await explainCustomer(await getDatabase(), selector, getGuardrails());
  if (explanation) console.log(formatExplanation(explanation));
  else {
    console.log("No live contact matches.");
    process.exitCode = 2;
  }
} catch (error) {
  console.error(
    error instanceof v.ValiError
      ? `${error.message}. ${USAGE}`
      : String(error instanceof Error ? error.message : error),
  );
  process.exitCode = 1;
} finally {
  await closeDatabase();
}
