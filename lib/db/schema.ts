/**
 * The database schema: the single source of truth for tables, constraints and indexes.
 * drizzle-kit generates the SQL migrations in drizzle/ from this file (`npm run db:generate`).
 * The SQL functions (the reconciliation among them) and triggers are not here: each has its
 * source file in drizzle/functions/ or drizzle/triggers/, installed by custom migrations
 * generated from those files (`npm run db:functions`, scripts/sql-functions.ts).
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

/**
 * Exported although no module imports it: drizzle-kit finds a schema's enums (as its tables)
 * among the schema file's exports: unexported, the next generated migration drops the type.
 */
export const linkPrecedence = pgEnum("link_precedence", ["primary", "secondary"]);

export const contacts = pgTable(
  "contacts",
  {
    id: integer("id").primaryKey().generatedAlwaysAsIdentity(),
    phoneNumber: text("phone_number"),
    email: text("email"),
    linkedId: integer("linked_id").references((): AnyPgColumn => contacts.id),
    linkPrecedence: linkPrecedence("link_precedence").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [
    // A primary stands alone; a secondary always names its primary.
    check(
      "contacts_link_consistent",
      sql`(${t.linkPrecedence} = 'primary' and ${t.linkedId} is null) or (${t.linkPrecedence} = 'secondary' and ${t.linkedId} is not null)`,
    ),
    check("contacts_has_identifier", sql`${t.email} is not null or ${t.phoneNumber} is not null`),
    check("contacts_not_self_linked", sql`${t.linkedId} <> ${t.id}`),
    // Every reconciliation lookup goes through one of these; deleted rows never match, so
    // they stay out of the indexes.
    index("contacts_email_live_idx").on(t.email).where(sql`${t.deletedAt} is null`),
    index("contacts_phone_number_live_idx").on(t.phoneNumber).where(sql`${t.deletedAt} is null`),
    index("contacts_linked_id_live_idx").on(t.linkedId).where(sql`${t.deletedAt} is null`),
    // Soft-deleted contacts by value: `npm run relink` finds through them the deleted
    // contacts that bridge a customer (drizzle/functions/identify_relink.sql). Requests
    // write live rows only, which these indexes never hold, so they cost them nothing.
    index("contacts_email_deleted_idx").on(t.email).where(sql`${t.deletedAt} is not null`),
    index("contacts_phone_number_deleted_idx")
      .on(t.phoneNumber)
      .where(sql`${t.deletedAt} is not null`),
    // Backstop for the "nothing new, nothing written" rule: the same (email, phone) pair
    // can never be stored twice among live contacts, whatever the caller does.
    uniqueIndex("contacts_identity_live_key")
      .on(sql`coalesce(${t.email}, '')`, sql`coalesce(${t.phoneNumber}, '')`)
      .where(sql`${t.deletedAt} is null`),
  ],
);

/** Exported for drizzle-kit, as {@link linkPrecedence} is. */
export const identityEventKind = pgEnum("identity_event_kind", [
  /** A contact was created as the primary of a new customer. */
  "created_primary",
  /** A contact was created as a secondary of an existing customer. */
  "created_secondary",
  /** A contact's primary changed: a merge, or healing of older data. */
  "relinked",
  /** A contact was copied from the service identify replaced. */
  "imported",
]);

/**
 * Append-only history of identity changes, written in the same statement as the change
 * itself (a trigger refuses updates and deletes). Answers "why are these two linked?".
 */
export const identityEvents = pgTable(
  "identity_events",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
    /** The request (or import run) that made the change. */
    requestId: text("request_id").notNull(),
    kind: identityEventKind("kind").notNull(),
    contactId: integer("contact_id")
      .notNull()
      .references(() => contacts.id),
    // The two primaries carry no foreign key: an erasure (lib/forget.ts) deletes a customer's
    // contacts and their own events, but another customer's history may still name an erased
    // contact as a former primary. Ids are never reused, so such an id stays unambiguous, and
    // the erasures table says where it went.
    /** The contact's primary before the change; null when it was created. */
    oldPrimaryId: integer("old_primary_id"),
    /** The contact's primary after the change (itself when it is the primary). */
    newPrimaryId: integer("new_primary_id").notNull(),
    /**
     * The transaction that wrote the event (txid_current(), epoch-qualified: never reused):
     * the change feed's position (drizzle/functions/identify_changes.sql), as it is for
     * erasures.
     */
    transactionId: bigint("transaction_id", { mode: "number" })
      .notNull()
      .default(sql`txid_current()`),
  },
  (t) => [
    index("identity_events_contact_idx").on(t.contactId, t.id),
    index("identity_events_request_idx").on(t.requestId),
    // The change feed's range read: events after a position, in position order.
    index("identity_events_feed_idx").on(t.transactionId, t.id),
  ],
);

/**
 * One row per erased customer (`npm run forget`, lib/forget.ts): the part of the audit trail
 * that survives an erasure. It holds ids and counts, never an email or a phone number, and
 * is append-only like identity_events (a trigger refuses updates and deletes). Its row is
 * also what lets identity_events give up the erased contacts' events: the trigger there
 * allows a delete only of events whose contacts an erasure of the same transaction lists
 * (drizzle/functions/identity_events_refuse_change.sql).
 */
export const erasures = pgTable(
  "erasures",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
    /** The erasure request (a ticket number, or a generated id): never the erased values. */
    requestId: text("request_id").notNull(),
    /** The erased contacts' ids, ascending; no foreign key, since the contacts are gone. */
    contactIds: integer("contact_ids").array().notNull(),
    contactCount: integer("contact_count").notNull(),
    /** How many identity_events rows went with the contacts. */
    eventCount: integer("event_count").notNull(),
    /** The transaction that erased, which the identity_events trigger matches its own with. */
    transactionId: bigint("transaction_id", { mode: "number" })
      .notNull()
      .default(sql`txid_current()`),
  },
  (t) => [
    check("erasures_count_matches", sql`${t.contactCount} = cardinality(${t.contactIds})`),
    // The change feed's range read (erasures after a position, in position order); the
    // identity_events trigger's lookup by transaction uses it too.
    index("erasures_feed_idx").on(t.transactionId, t.id),
  ],
);

/** PostgreSQL's bytea, which drizzle-orm's pg-core has no column builder for. */
const bytea = customType<{ data: Buffer }>({ dataType: () => "bytea" });

/**
 * The key of the erased-values list: an HMAC-SHA256 key of 64 random bytes, kept as the two
 * blocks HMAC hashes it into (the key XOR 0x36…, XOR 0x5c…), which is all HMAC uses, so that
 * PostgreSQL's built-in sha256 computes it without pgcrypto. Made by the first erasure
 * (drizzle/functions/erased_values_record.sql) and never changed: a new key would make every
 * recorded hash useless. One row; docs/privacy.md says why the key lives here.
 */
export const erasureKey = pgTable(
  "erasure_key",
  {
    /** Always true: the table holds one row. */
    only: boolean("only").primaryKey().default(true),
    innerPad: bytea("inner_pad").notNull(),
    outerPad: bytea("outer_pad").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("erasure_key_one_row", sql`${t.only}`),
    check(
      "erasure_key_block_size",
      sql`octet_length(${t.innerPad}) = 64 and octet_length(${t.outerPad}) = 64`,
    ),
  ],
);

/**
 * The erased-values list: one keyed hash (identify_erased_value_hash, keyed by erasure_key)
 * per distinct email and phone number an erasure took, written by the trigger on contacts
 * that sees the erasure's delete (drizzle/triggers/contacts_erased_values.sql). The import
 * consults it, so that no source row carrying an erased value comes back, whether it was
 * imported before, skipped as a duplicate or never seen (lib/import.ts). No value, no
 * contact id, no time: only what that check needs (docs/privacy.md).
 */
export const erasedValues = pgTable(
  "erased_values",
  {
    /** Which identifier the value was: the hash covers it too. */
    kind: text("kind", { enum: ["email", "phone"] }).notNull(),
    /** HMAC-SHA256 of the normalized value under erasure_key. */
    valueHash: bytea("value_hash").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.kind, t.valueHash] }),
    check("erased_values_kind_known", sql`${t.kind} in ('email', 'phone')`),
  ],
);

/**
 * The deployment that last built against this database (lib/db/deployment.ts): whether it
 * was production or a preview, which database that was, and the guardrails it runs with.
 *
 * "Which database" is what the server itself reports (its system identifier, the
 * database's OID, Neon's timeline), never a URL's spelling: the same database reached by
 * another host name, an IP, a `?host=` override or the pooled URL reports the same; a
 * `CREATE DATABASE … TEMPLATE` copy (another OID) or a Neon branch (another timeline)
 * carries this row but reports otherwise, so the row alone never decides.
 *
 * The guardrails are the deployment's junk lists and cap, so that the command-line tools
 * apply the very settings the function applies (lib/guardrails.ts).
 */
export const deployment = pgTable(
  "deployment",
  {
    /** Always true: the table holds one row. */
    only: boolean("only").primaryKey().default(true),
    /** The Vercel environment of the build that recorded it. */
    role: text("role", { enum: ["production", "preview"] }).notNull(),
    /** pg_control_system().system_identifier; null where the server does not tell. */
    systemIdentifier: text("system_identifier"),
    /** The database's OID in pg_database: a TEMPLATE copy gets another. */
    databaseOid: bigint("database_oid", { mode: "number" }).notNull(),
    /** The setting neon.timeline_id: a Neon branch has its own. Null off Neon. */
    neonTimelineId: text("neon_timeline_id"),
    /** current_database() at the time, for messages only. */
    databaseName: text("database_name").notNull(),
    /** The guardrails' options jsonb (lib/guardrails.ts) of the recording deployment. */
    guardrails: jsonb("guardrails").notNull(),
    recordedAt: timestamp("recorded_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("deployment_one_row", sql`${t.only}`),
    check("deployment_role_known", sql`${t.role} in ('production', 'preview')`),
  ],
);

export type Contact = typeof contacts.$inferSelect;
export type NewContact = typeof contacts.$inferInsert;
export type LinkPrecedence = (typeof linkPrecedence.enumValues)[number];
export type IdentityEvent = typeof identityEvents.$inferSelect;
