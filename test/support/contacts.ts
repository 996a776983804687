/** Reading and planting contact rows directly, for setting up states and checking writes. */
import { asc } from "drizzle-orm";
import type { Database } from "../../lib/db/client.js";
import { type Contact, contacts, type NewContact } from "../../lib/db/schema.js";

/** Every row of the table, live or deleted, by id. */
export function allContacts(db: Database): Promise<Contact[]> {
  return db.select().from(contacts).orderBy(asc(contacts.id));
}

/** Inserts a row as older data might have left it (any link state, any timestamps). */
export async function plantContact(db: Database, row: Omit<NewContact, "id">): Promise<Contact> {
  const [inserted] = await db.insert(contacts).values(row).returning();
  if (!inserted) throw new Error("insert returned nothing");
  return inserted;
}

/** A timestamp `minutes` after a fixed origin, for rows whose age matters. */
export const at = (minutes: number) => new Date(Date.UTC(2023, 3, 1, 0, minutes));
