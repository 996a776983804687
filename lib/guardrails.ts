/**
 * Over-merge guardrails: junk values, opt-in (placeholders such as test@test.com or
 * 0000000000 that many unrelated people type), are stored on contacts but never link
 * customers; and a cap, on by default, refuses to grow a customer past a number of contacts. The database
 * function applies them; this module turns the validated configuration into the guardrail
 * part of the functions' options jsonb (lib/db/sql-contract.ts): it splits the lists that
 * lib/config.ts reads, normalizes their values and has PostgreSQL check their patterns.
 */
import { sql } from "drizzle-orm";
import * as v from "valibot";
import { type Config, getConfig, readConfig } from "./config.js";
import type { Database } from "./db/client.js";
import { readDeployment } from "./db/deployment.js";
import { databaseMessage, sqlState } from "./db/errors.js";
import type { Guardrails } from "./db/sql-contract.js";
import { ConfigError } from "./errors.js";
import { EmailSchema, normalizeIdentifier, PhoneNumberSchema } from "./input.js";

// The type is the SQL functions' (lib/db/sql-contract.ts); its readers import it from here.
export type { Guardrails } from "./db/sql-contract.js";

/** The entries of a JUNK_EMAILS or JUNK_PHONE_NUMBERS list, split but not yet normalized. */
export interface JunkList {
  /** Exact values, as written (the guardrails normalize them like requests). */
  values: string[];
  /** PostgreSQL regular expressions, without their slashes. */
  patterns: string[];
}

/** The "/" that closes a pattern: the first one followed by a comma or the end. */
const PATTERN_END = /\/\s*(?:,|$)/;

/**
 * Splits a junk list. Entries are separated by commas; a `/pattern/` runs from its "/" to
 * the first "/" that is followed by a comma or the end, so a pattern may contain commas
 * (`/^0{6,}$/`). Inside a pattern, write a slash that a comma follows as `[/]`.
 * @returns the entries, or the reason the list is malformed.
 */
export function splitJunkList(list: string): JunkList | string {
  const values: string[] = [];
  const patterns: string[] = [];
  let rest = list.trimStart();
  while (rest !== "") {
    if (rest.startsWith("/")) {
      const end = PATTERN_END.exec(rest.slice(1));
      if (!end) return `the pattern ${rest} has no closing "/" before a comma or the end`;
      const pattern = rest.slice(1, 1 + end.index);
      if (pattern === "") return "// is an empty pattern";
      patterns.push(pattern);
      rest = rest.slice(1 + end.index + end[0].length);
    } else {
      const comma = rest.indexOf(",");
      const value = (comma === -1 ? rest : rest.slice(0, comma)).trim();
      if (value !== "") values.push(value);
      rest = comma === -1 ? "" : rest.slice(comma + 1);
    }
    rest = rest.trimStart();
  }
  return { values, patterns };
}

/**
 * A junk list as the guardrails take it: exact values normalized, patterns as written.
 * @throws ConfigError naming the variable when the list is malformed (splitJunkList) or an
 *   exact value is not an identifier.
 */
function parseList(
  name: string,
  setting: string | undefined,
  schema: typeof EmailSchema | typeof PhoneNumberSchema,
): { exact?: string[]; patterns?: string[] } {
  const list = splitJunkList(setting ?? "");
  if (typeof list === "string") throw new ConfigError(`Invalid environment: ${name}: ${list}`);
  const exact = list.values.map((entry) => {
    // Exact junk values are normalized like requests are, so they compare equal.
    const normalized = normalizeIdentifier(schema, entry) ?? null;
    if (normalized === null) {
      throw new ConfigError(`Invalid environment: ${name}: "${entry}" is not a valid identifier`);
    }
    return normalized;
  });
  const patterns = list.patterns;
  return {
    ...(exact.length > 0 ? { exact } : {}),
    ...(patterns.length > 0 ? { patterns } : {}),
  };
}

/** Reads the guardrails from the configuration. Throws a ConfigError on an invalid value. */
export function guardrailsFrom(config: Config): Guardrails {
  const emails = parseList("JUNK_EMAILS", config.JUNK_EMAILS, EmailSchema);
  const phones = parseList("JUNK_PHONE_NUMBERS", config.JUNK_PHONE_NUMBERS, PhoneNumberSchema);
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
  const { junkEmailPatterns, junkPhonePatterns } = guardrailsFrom(config);
  const lists = [
    ["JUNK_EMAILS", junkEmailPatterns],
    ["JUNK_PHONE_NUMBERS", junkPhonePatterns],
  ] as const;
  for (const [name, patterns] of lists) {
    for (const pattern of patterns ?? []) {
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

/**
 * The junk patterns the deploy build had PostgreSQL compile, spelled as junkPatternsKey spells
 * them. scripts/build-function.ts writes it into the bundle (esbuild's `define`) when
 * `npm run vercel-build` runs it after scripts/migrate.ts --deploy, which checks the patterns
 * against the deployment's database and fails the build on one PostgreSQL refuses. Vercel
 * gives the build and the function one environment, so the function's patterns are those.
 * Undeclared anywhere else (npm start, tests, `npm run build` alone): there `typeof` says so.
 */
declare const IDENTIFY_BUILD_CHECKED_JUNK_PATTERNS: string | undefined;

const CHECKED_AT_BUILD =
  typeof IDENTIFY_BUILD_CHECKED_JUNK_PATTERNS === "string"
    ? IDENTIFY_BUILD_CHECKED_JUNK_PATTERNS
    : undefined;

/** One spelling of the junk patterns of `guardrails`, the build's record and the function's. */
export function junkPatternsKey(guardrails: Guardrails): string {
  return JSON.stringify([guardrails.junkEmailPatterns ?? [], guardrails.junkPhonePatterns ?? []]);
}

/**
 * checkJunkPatterns, unless `checkedByBuild` (junkPatternsKey of what the deploy build
 * checked) names exactly the patterns of `config`: a function's first request then asks
 * PostgreSQL nothing the build already asked.
 * @throws ConfigError as checkJunkPatterns does.
 */
export async function checkJunkPatternsUnlessBuilt(
  db: Database,
  config: Config,
  checkedByBuild: string | undefined,
): Promise<void> {
  if (checkedByBuild === junkPatternsKey(guardrailsFrom(config))) return;
  await checkJunkPatterns(db, config);
}

let patternsChecked: Promise<void> | undefined;

/**
 * checkJunkPatternsUnlessBuilt for the process's configuration, once: a failure is checked
 * again.
 */
export function checkJunkPatternsOnce(db: Database): Promise<void> {
  patternsChecked ??= checkJunkPatternsUnlessBuilt(db, getConfig(), CHECKED_AT_BUILD).catch(
    (error: unknown) => {
      patternsChecked = undefined;
      throw error;
    },
  );
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
