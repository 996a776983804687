/** The `--email | --phone | --id` choice that `npm run explain` and `npm run forget` share. */
import * as v from "valibot";
import type { CustomerSelector } from "../lib/explain.js";
import { EmailSchema, PhoneNumberSchema } from "../lib/input.js";

/** The parseArgs options of a selector. */
export const SELECTOR_OPTIONS = {
  email: { type: "string" },
  phone: { type: "string" },
  id: { type: "string" },
} as const;

/**
 * The one identifier given, normalized as POST /identify normalizes it.
 * @throws Error with `usage` unless exactly one is given and it is valid; the message never
 * quotes the value, which may be personal data.
 */
export function selectorFrom(
  values: { email?: string; phone?: string; id?: string },
  usage: string,
): CustomerSelector {
  const given = [values.email, values.phone, values.id].filter((value) => value !== undefined);
  if (given.length !== 1) throw new Error(usage);
  if (values.id !== undefined) {
    const id = Number(values.id);
    if (!Number.isSafeInteger(id) || id < 1) throw new Error(`--id must be a contact id. ${usage}`);
    return { id };
  }
  try {
    if (values.email !== undefined) {
      const email = v.parse(EmailSchema, values.email);
      if (email === null) throw new Error(usage);
      return { email };
    }
    const phoneNumber = v.parse(PhoneNumberSchema, values.phone);
    if (phoneNumber === null) throw new Error(usage);
    return { phoneNumber };
  } catch (error) {
    if (error instanceof v.ValiError) throw new Error(`${error.message}. ${usage}`);
    throw error;
  }
}
