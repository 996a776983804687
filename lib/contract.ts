/**
 * The response side of the contract as valibot schemas: what clients may rely on. The
 * types the handler returns are inferred from these, and the OpenAPI document in
 * public/openapi.json is generated from them, so code and reference cannot disagree.
 */
import * as v from "valibot";

const ContactId = v.pipe(v.number(), v.integer(), v.minValue(1));

export const ContactResponseSchema = v.object({
  contact: v.object({
    primaryContactId: v.pipe(ContactId, v.description("The customer's primary (oldest) contact.")),
    primaryContatctId: v.pipe(
      ContactId,
      v.metadata({
        description:
          "Deprecated alias of primaryContactId, always equal to it: the original specification's spelling, kept for existing clients.",
        deprecated: true,
      }),
    ),
    emails: v.pipe(
      v.array(v.string()),
      v.description("Each email once: the primary's first, then by contact creation order."),
    ),
    phoneNumbers: v.pipe(
      v.array(v.string()),
      v.description("Each phone number once, as a string: the primary's first, then by creation."),
    ),
    secondaryContactIds: v.pipe(
      v.array(ContactId),
      v.description("Every other contact of the customer, by creation order."),
    ),
  }),
});

export type ContactResponse = v.InferOutput<typeof ContactResponseSchema>;

export const ErrorResponseSchema = v.object({
  error: v.object({
    code: v.pipe(v.string(), v.description("Stable, machine-readable error code.")),
    message: v.pipe(v.string(), v.description("Human-readable explanation.")),
    issues: v.pipe(
      v.array(
        v.object({
          path: v.pipe(
            v.string(),
            v.description('The field at fault ("email", "phoneNumber"), or "" for the body.'),
          ),
          message: v.string(),
        }),
      ),
      v.description("One entry per invalid field; empty unless code is invalid_request."),
    ),
    requestId: v.pipe(
      v.string(),
      v.description("Also in the X-Request-Id header and the server's log line."),
    ),
  }),
});

export type ErrorResponse = v.InferOutput<typeof ErrorResponseSchema>;
