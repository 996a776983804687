/**
 * The database schema: the single source of truth for tables, constraints and indexes.
 * drizzle-kit generates the SQL migrations in drizzle/ from this file; the reconciliation
 * function itself lives in a custom migration because it is PL/pgSQL, not a table.
 */
import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  check,
  index,
  integer,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

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
    // Backstop for the "nothing new, nothing written" rule: the same (email, phone) pair
    // can never be stored twice among live contacts, whatever the caller does.
    uniqueIndex("contacts_identity_live_key")
      .on(sql`coalesce(${t.email}, '')`, sql`coalesce(${t.phoneNumber}, '')`)
      .where(sql`${t.deletedAt} is null`),
  ],
);

export type Contact = typeof contacts.$inferSelect;
export type NewContact = typeof contacts.$inferInsert;
export type LinkPrecedence = (typeof linkPrecedence.enumValues)[number];
