/**
 * What the command lines share: reading the arguments (with `--help`), for every tool, and
 * the `--email | --phone | --id` choice of `npm run explain`, `forget` and `relink`. Their
 * output may be pasted into tickets, so no message here ever quotes an argument, which may be
 * personal data or a password.
 */
import { createInterface } from "node:readline/promises";
import { type ParseArgsConfig, parseArgs } from "node:util";
import * as v from "valibot";
import type { CustomerSelector } from "../lib/explain.js";
import { EmailSchema, PhoneNumberSchema } from "../lib/input.js";

/** A mistake on the command line. Its message never quotes an argument: safe to print. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** `--help` (`-h`), which every tool takes: it prints the usage and exits 0. */
const HELP_OPTION = { help: { type: "boolean", short: "h", default: false } } as const;

/**
 * parseArgs with `--help` added to `options`; check `values.help` first.
 * @throws UsageError for an unknown option, a stray argument or a missing value: parseArgs's
 * own message would quote it, and a stray argument is often the very email given without
 * its flag.
 */
export function parseCommandLine<const O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
  usage: string,
) {
  try {
    return parseArgs({ args, options: { ...options, ...HELP_OPTION } }).values;
  } catch (error) {
    if (!String((error as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS")) throw error;
    throw new UsageError(
      `Unreadable arguments (not repeated here: they may be personal data or a password). ${usage}`,
    );
  }
}

/** The parseArgs options of a selector. */
export const SELECTOR_OPTIONS = {
  email: { type: "string" },
  phone: { type: "string" },
  id: { type: "string" },
} as const;

/**
 * The one identifier given, normalized as POST /identify normalizes it.
 * @throws UsageError with `usage` unless exactly one is given and it is valid; the message
 * never quotes the value, which may be personal data.
 */
export function selectorFrom(
  values: { email?: string; phone?: string; id?: string },
  usage: string,
): CustomerSelector {
  const given = [values.email, values.phone, values.id].filter((value) => value !== undefined);
  if (given.length !== 1) throw new UsageError(usage);
  if (values.id !== undefined) {
    const id = Number(values.id);
    if (!Number.isSafeInteger(id) || id < 1) {
      throw new UsageError(`--id must be a contact id. ${usage}`);
    }
    return { id };
  }
  try {
    if (values.email !== undefined) {
      const email = v.parse(EmailSchema, values.email);
      if (email === null) throw new UsageError(usage);
      return { email };
    }
    const phoneNumber = v.parse(PhoneNumberSchema, values.phone);
    if (phoneNumber === null) throw new UsageError(usage);
    return { phoneNumber };
  } catch (error) {
    if (error instanceof v.ValiError) throw new UsageError(`${error.message}. ${usage}`);
    throw error;
  }
}

/** Asks `question` on the terminal; true only for an explicit "yes" (forget, relink). */
export async function confirmed(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await terminal.question(question)).trim().toLowerCase() === "yes";
  } finally {
    terminal.close();
  }
}

/**
 * Whether the operator agreed to `verb` (erase, relink; `done` its past participle): --yes, or
 * "yes" typed on a terminal.
 * Without a terminal and without --yes it refuses, saying how to run it from a script.
 */
export async function agreed(
  yes: boolean,
  [verb, done]: readonly [string, string],
  question: string,
): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) {
    console.error(
      `Refusing to ${verb} without confirmation: stdin is not a terminal. Pass --yes to ${verb} from a script.`,
    );
    return false;
  }
  if (await confirmed(question)) return true;
  console.log(`Cancelled: nothing was ${done}.`);
  return false;
}
