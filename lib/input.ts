/**
 * The request contract of POST /identify as valibot schemas: what a caller may send, and the
 * normalized identifiers the reconciler works with. Normalizing here, once, is what makes
 * "Doc@Example.com " and "doc@example.com" the same customer.
 */
import * as v from "valibot";
import { invalidRequest } from "./errors.js";

/** Longest address SMTP can carry (RFC 5321 path limit less the angle brackets). */
const EMAIL_MAX_LENGTH = 254;
/** Longest phone number accepted, in digits (E.164 allows 15; stores keep extensions). */
const PHONE_MAX_DIGITS = 20;

const PHONE_PATTERN = new RegExp(`^\\+?\\d{1,${PHONE_MAX_DIGITS}}$`);
/** Separators people type inside phone numbers: spaces, hyphens, dots and parentheses. */
const PHONE_SEPARATORS = /[\s\-.()]/g;

/** Trims a string and reads "" as "not given". */
const blankToNull = (value: string | null | undefined): string | null => {
  const trimmed = value?.trim() ?? "";
  return trimmed === "" ? null : trimmed;
};

export const EmailSchema = v.pipe(
  v.nullish(v.string("email must be a string or null")),
  v.metadata({
    description: `Trimmed and lower-cased, then a valid address of at most ${EMAIL_MAX_LENGTH} characters. null, absent, "" and whitespace mean "not given".`,
    examples: ["lorraine@hillvalley.edu"],
  }),
  v.transform((value) => blankToNull(value)?.toLowerCase() ?? null),
  v.nullable(
    v.pipe(
      v.string(),
      v.maxLength(EMAIL_MAX_LENGTH, `email must be at most ${EMAIL_MAX_LENGTH} characters`),
      v.rfcEmail("email must be a valid email address"),
    ),
  ),
);

export const PhoneNumberSchema = v.pipe(
  v.nullish(
    v.union(
      [
        v.string(),
        v.pipe(
          v.number(),
          v.integer("phoneNumber must be a whole number when sent as a number"),
          v.minValue(0, "phoneNumber must not be negative"),
          // Past 2^53 - 1 a JSON number may already have been rounded by the sender's parser:
          // which digits were meant cannot be known, so it must come as a string.
          v.maxValue(
            Number.MAX_SAFE_INTEGER,
            "phoneNumber is too large to be exact as a JSON number; send it as a string",
          ),
        ),
      ],
      "phoneNumber must be a string, a number or null",
    ),
  ),
  v.metadata({
    description: `A string (trimmed; spaces, hyphens, dots and parentheses removed; an optional leading + kept; then 1 to ${PHONE_MAX_DIGITS} digits) or a non-negative safe integer. null, absent, "" and whitespace mean "not given".`,
    examples: ["123456"],
  }),
  v.transform((value) =>
    typeof value === "number"
      ? String(value)
      : (blankToNull(value)?.replace(PHONE_SEPARATORS, "") ?? null),
  ),
  v.nullable(
    v.pipe(
      v.string(),
      v.regex(
        PHONE_PATTERN,
        `phoneNumber must be 1 to ${PHONE_MAX_DIGITS} digits, optionally after a leading +`,
      ),
    ),
  ),
);

/**
 * One raw email or phone number normalized exactly as a request's is (`schema` is EmailSchema
 * or PhoneNumberSchema): the normalized value; null when it is null or blank ("not given");
 * undefined when it is no valid identifier. The one normalizer of single values: junk lists
 * (lib/guardrails.ts) and imported rows (lib/import.ts) use it, so they compare equal to requests.
 */
export function normalizeIdentifier(
  schema: typeof EmailSchema | typeof PhoneNumberSchema,
  raw: string | null,
): string | null | undefined {
  const result = v.safeParse(schema, raw);
  return result.success ? result.output : undefined;
}

const BODY_MUST_BE_OBJECT = "The request body must be a JSON object";

/** The body's fields; also the source of the request schema in the OpenAPI document. */
export const IdentifyRequestObjectSchema = v.pipe(
  v.object({ email: EmailSchema, phoneNumber: PhoneNumberSchema }, BODY_MUST_BE_OBJECT),
  v.description("At least one of email and phoneNumber must be given. Unknown fields are ignored."),
);

const IdentifyRequestSchema = v.pipe(
  // valibot's object() lets arrays through; a JSON array is never a valid body.
  v.custom<object>(
    (body) => typeof body === "object" && body !== null && !Array.isArray(body),
    BODY_MUST_BE_OBJECT,
  ),
  IdentifyRequestObjectSchema,
  // Absent keys stay absent through object(); the reconciler wants an explicit null.
  v.transform((input) => ({
    email: input.email ?? null,
    phoneNumber: input.phoneNumber ?? null,
  })),
  v.check(
    (input) => input.email !== null || input.phoneNumber !== null,
    "Provide an email, a phoneNumber or both",
  ),
);

/** Normalized identifiers: lower-cased email, digits-only phone number; at least one set. */
export type IdentifyInput = v.InferOutput<typeof IdentifyRequestSchema>;

/**
 * Validates and normalizes a parsed JSON body.
 * @throws HttpError 400 invalid_request naming each field's problem (`path` "" is the body).
 */
export function parseIdentifyRequest(body: unknown): IdentifyInput {
  const result = v.safeParse(IdentifyRequestSchema, body);
  if (result.success) return result.output;
  throw invalidRequest(
    result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? "", message: issue.message })),
  );
}
