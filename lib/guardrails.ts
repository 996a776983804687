/**
 * Over-merge guardrails, both opt-in: junk values (placeholders such as test@test.com or
 * 0000000000 that many unrelated people type) are stored on contacts but never link
 * customers, and a cap refuses to grow a customer past a number of contacts. The database
 * function applies them; this module reads them from the environment, as the guardrail part
 * of the functions' options jsonb (lib/db/sql-contract.ts).
 */
import * as v from "valibot";
import type { Config } from "./config.js";
import { EmailSchema, PhoneNumberSchema } from "./input.js";

/** The guardrail options the SQL functions take (all absent when off). */
export interface Guardrails {
  junkEmails?: string[];
  junkEmailPatterns?: string[];
  junkPhones?: string[];
  junkPhonePatterns?: string[];
  maxContacts?: number;
}

/** A `/.../` entry is a PostgreSQL regular expression; anything else an exact value. */
const PATTERN = /^\/(.+)\/$/;

function parseList(
  list: string | undefined,
  normalize: (value: string) => string | null,
): { exact?: string[]; patterns?: string[] } {
  const exact: string[] = [];
  const patterns: string[] = [];
  for (const entry of (list ?? "").split(",").map((item) => item.trim())) {
    if (entry === "") continue;
    const pattern = PATTERN.exec(entry)?.[1];
    if (pattern !== undefined) {
      // Validate early (JS and PostgreSQL agree on the simple expressions this is for).
      new RegExp(pattern);
      patterns.push(pattern);
    } else {
      const normalized = normalize(entry);
      if (normalized === null) throw new Error(`Junk value "${entry}" is not a valid identifier`);
      exact.push(normalized);
    }
  }
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

/** Reads the guardrails from the configuration. Throws on an invalid value or pattern. */
export function guardrailsFrom(config: Config): Guardrails {
  const emails = parseList(config.JUNK_EMAILS, normalizeWith(EmailSchema));
  const phones = parseList(config.JUNK_PHONE_NUMBERS, normalizeWith(PhoneNumberSchema));
  return {
    ...(emails.exact ? { junkEmails: emails.exact } : {}),
    ...(emails.patterns ? { junkEmailPatterns: emails.patterns } : {}),
    ...(phones.exact ? { junkPhones: phones.exact } : {}),
    ...(phones.patterns ? { junkPhonePatterns: phones.patterns } : {}),
    ...(config.MAX_CONTACTS_PER_CUSTOMER !== undefined
      ? { maxContacts: config.MAX_CONTACTS_PER_CUSTOMER }
      : {}),
  };
}
