/**
 * Over-merge guardrails: junk values, opt-in (placeholders such as test@test.com or
 * 0000000000 that many unrelated people type), are stored on contacts but never link
 * customers; and a cap, on by default, refuses to grow a customer past a number of contacts. The database
 * function applies them; this module turns the validated configuration into the guardrail
 * part of the functions' options jsonb (lib/db/sql-contract.ts): lib/config.ts splits the
 * lists, this module normalizes their values and has PostgreSQL check their patterns.
 */
import { sql } from "drizzle-orm";
import * as v from "valibot";
import { type Config, getConfig, type JunkList, readConfig } from "./config.js";
import type { Database } from "./db/client.js";
import { readDeployment } from "./db/deployment.js";
import { databaseMessage, sqlState } from "./db/errors.js";
import { ConfigError } from "./errors.js";
import { EmailSchema, PhoneNumberSchema } from "./input.js";

/** The guardrail options the SQL functions take (all absent when off). */
export interface Guardrails {
  junkEmails?: string[];
  junkEmailPatterns?: string[];
  junkPhones?: string[];
  junkPhonePatterns?: string[];
  maxContacts?: number;
}

/**
 * A junk list as the guardrails take it: exact values normalized, patterns as written.
 * @throws ConfigError naming the variable when an exact value is not an identifier.
 */
function parseList(
  name: string,
  list: JunkList | undefined,
  normalize: (value: string) => string | null,
): { exact?: string[]; patterns?: string[] } {
  const exact = (list?.values ?? []).map((entry) => {
    const normalized = normalize(entry);
    if (normalized === null) {
      throw new ConfigError(`Invalid environment: ${name}: "${entry}" is not a valid identifier`);
    }
    return normalized;
  });
  const patterns = list?.patterns ?? [];
  return {
    ...(exact.length > 0 ? { exact } : {}),
    ...(patterns.length > 0 ? { patterns } : {}),
  };
}

/** Exact junk values are normalized like requests are, so they compare equal. */
const normalizeWith =
  (schema: typeof EmailSchema | typeof PhoneNumberSchema) =>
  (value: string): string | null => {
    const result = v.safeParse(schema, value);
    return result.success ? result.output : null;
  };

/** Reads the guardrails from the configuration. Throws a ConfigError on an invalid value. */
export function guardrailsFrom(config: Config): Guardrails {
  const emails = parseList("JUNK_EMAILS", config.JUNK_EMAILS, normalizeWith(EmailSchema));
  const phones = parseList(
    "JUNK_PHONE_NUMBERS",
    config.JUNK_PHONE_NUMBERS,
    normalizeWith(PhoneNumberSchema),
  );
  return {
    ...(emails.exact ? { junkEmails: emails.exact } : {}),
    ...(emails.patterns ? { junkEmailPatterns: emails.patterns } : {}),
    ...(phones.exact ? { junkPhones: phones.exact } : {}),
    ...(phones.patterns ? { junkPhonePatterns: phones.patterns } : {}),
    maxContacts: config.MAX_CONTACTS_PER_CUSTOMER,
  };
}

let guardrails: Guardrails | undefined;

/**
 * The process's over-merge guardrails: those given to {@link useGuardrails}, else read from
 * the configuration on first use.
 */
export function getGuardrails(): Guardrails {
  guardrails ??= guardrailsFrom(getConfig());
  return guardrails;
}

/**
 * Makes `chosen` the process's guardrails, which getGuardrails() returns from then on:
 * `npm start` gives it those its database's deployment recorded ({@link deployedGuardrails}),
 * so the local server links as the deployed function and the tools do.
 */
export function useGuardrails(chosen: Guardrails): void {
  guardrails = chosen;
}

/** SQLSTATE invalid_regular_expression. */
const INVALID_REGULAR_EXPRESSION = "2201B";

/**
 * Has PostgreSQL itself compile each junk pattern of `config`, since only it decides what its
 * regular expressions accept (JavaScript takes `(?<n>0)`; PostgreSQL refuses it, and would
 * then fail every request that meets the pattern).
 * @throws ConfigError naming the variable and the pattern PostgreSQL refuses.
 */
export async function checkJunkPatterns(db: Database, config: Config): Promise<void> {
  for (const name of ["JUNK_EMAILS", "JUNK_PHONE_NUMBERS"] as const) {
    for (const pattern of config[name]?.patterns ?? []) {
      try {
        // The operator identify_is_junk applies, on a value that cannot match by accident.
        await db.execute(sql`select ''::text ~ ${pattern}::text`);
      } catch (error) {
        if (sqlState(error) !== INVALID_REGULAR_EXPRESSION) throw error;
        throw new ConfigError(
          `Invalid environment: ${name}: PostgreSQL refuses the pattern /${pattern}/ (${databaseMessage(error)})`,
        );
      }
    }
  }
}

let patternsChecked: Promise<void> | undefined;

/** checkJunkPatterns for the process's configuration, once: a failure is checked again. */
export function checkJunkPatternsOnce(db: Database): Promise<void> {
  patternsChecked ??= checkJunkPatterns(db, getConfig()).catch((error: unknown) => {
    patternsChecked = undefined;
    throw error;
  });
  return patternsChecked;
}

/** The variables that set guardrails. */
const GUARDRAIL_VARIABLES = ["JUNK_EMAILS", "JUNK_PHONE_NUMBERS", "MAX_CONTACTS_PER_CUSTOMER"];

const StringList = v.optional(v.array(v.string()));

/** The guardrails a deployment recorded, checked before a tool acts on them. */
const RecordedGuardrailsSchema = v.object({
  junkEmails: StringList,
  junkEmailPatterns: StringList,
  junkPhones: StringList,
  junkPhonePatterns: StringList,
  maxContacts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2))),
});

/** One spelling per meaning: keys sorted, list order ignored, absent lists as empty. */
function canonical(guardrails: Guardrails): string {
  const sorted = (list: string[] | undefined) => [...(list ?? [])].sort();
  return JSON.stringify([
    sorted(guardrails.junkEmails),
    sorted(guardrails.junkEmailPatterns),
    sorted(guardrails.junkPhones),
    sorted(guardrails.junkPhonePatterns),
    guardrails.maxContacts ?? null,
  ]);
}

/** The guardrails a command-line tool applies, and where they came from (for its output). */
interface ToolGuardrails {
  guardrails: Guardrails;
  /** "the production deployment (recorded …)", or this environment when none recorded. */
  source: string;
}

/**
 * The guardrails a command-line tool (forget, import, explain) applies to `db`: the ones the
 * deployment that builds against this database recorded there (lib/db/deployment.ts), so an
 * operator's tool links, erases and settles customers exactly as the deployed function does,
 * with only DATABASE_URL set. A guardrail variable set here as well must agree with the
 * record: a tool never silently applies other junk lists or another cap than the function.
 * Where no deployment recorded any (the embedded database, a database of its own), the
 * environment's. `npm start` applies them too (scripts/serve.ts).
 * @throws ConfigError naming each variable that disagrees with the deployment's record.
 */
export async function deployedGuardrails(
  db: Database,
  env: Record<string, string | undefined> = process.env,
): Promise<ToolGuardrails> {
  const local = guardrailsFrom(readConfig(env));
  const recorded = await readDeployment(db);
  if (!recorded) {
    return {
      guardrails: local,
      source: "this environment (no deployment has recorded its guardrails in this database)",
    };
  }
  const parsed = v.safeParse(RecordedGuardrailsSchema, recorded.guardrails);
  if (!parsed.success) {
    throw new ConfigError(
      "The guardrails recorded in this database's deployment row are unreadable; deploy again to record them",
    );
  }
  const theirs: Guardrails = Object.fromEntries(
    Object.entries(parsed.output).filter(([, value]) => value !== undefined),
  );
  const when = recorded.recordedAt.toISOString();
  const set = GUARDRAIL_VARIABLES.filter((name) => env[name]?.trim());
  if (set.length > 0 && canonical(local) !== canonical(theirs)) {
    throw new ConfigError(
      `${set.join(", ")} here differ from the guardrails the ${recorded.role} deployment ` +
        `recorded in this database (${when}). The tools apply the deployment's guardrails: ` +
        `unset ${set.length > 1 ? "them" : "it"} (DATABASE_URL is all a tool needs), or ` +
        "deploy the new values first.",
    );
  }
  return { guardrails: theirs, source: `the ${recorded.role} deployment (recorded ${when})` };
}
