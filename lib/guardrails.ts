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
import { type Config, getConfig, type JunkList } from "./config.js";
import type { Database } from "./db/client.js";
import { ConfigError, databaseMessage, sqlState } from "./errors.js";
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

/** The process's over-merge guardrails, read from the configuration on first use. */
export function getGuardrails(): Guardrails {
  guardrails ??= guardrailsFrom(getConfig());
  return guardrails;
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
