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

/**
 * What happened to a contact, as a page of the change feed reports it:
 * - created: it was created, as a primary or a secondary, or imported;
 * - relinked: its primary changed (a merge, a settle, an import's repair);
 * - deleted: it is soft-deleted (deleted_at set), so no longer a live contact: no primary;
 * - erased: it was erased (npm run forget): no primary, and no values anywhere.
 */
export const CHANGE_KINDS = ["created", "relinked", "deleted", "erased"] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** A page of GET /identify/changes (lib/changes.ts). */
export const ChangesResponseSchema = v.object({
  changes: v.pipe(
    v.array(
      v.object({
        contactId: v.pipe(ContactId, v.description("The contact that changed.")),
        primaryContactId: v.pipe(
          v.nullable(ContactId),
          v.description(
            "The contact's primary as this page was read, which may already reflect a later change; null when the contact is no longer live (deleted, erased): remove it.",
          ),
        ),
        kind: v.pipe(
          v.picklist(CHANGE_KINDS),
          v.description(
            "created: created as a primary or a secondary, or imported. relinked: its primary changed (a merge, a settle, an import's repair). deleted: soft-deleted, no longer a live contact (primaryContactId null). erased: erased on request (npm run forget; primaryContactId null): delete every copy.",
          ),
        ),
        at: v.pipe(v.string(), v.isoTimestamp(), v.description("When the change was made (UTC).")),
      }),
    ),
    v.description(
      "Oldest first, in the order to apply them: set contactId to primaryContactId, or remove it when that is null.",
    ),
  ),
  next: v.pipe(
    v.string(),
    v.description(
      "Opaque cursor: pass it as after to read the changes that follow. An empty page hands back the cursor it was given.",
    ),
  ),
});

export type ChangesResponse = v.InferOutput<typeof ChangesResponseSchema>;
