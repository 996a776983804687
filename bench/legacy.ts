/**
 * A database of the old service's shape for the bench's import section: a `Contact` table of
 * `rows` rows, as `npm run import` reads it (lib/import.ts), made in one `INSERT ... SELECT`.
 * Its values are its own (no preloaded customer holds them), so lookups of the preloaded
 * customers answer the same before, during and after the import. Every third row links to
 * the row before it, and one row in 27 to a secondary (a chain), so the import has
 * customers to settle, as a real one does.
 */
import { sql } from "drizzle-orm";
import type { Database } from "../lib/db/client.js";
import { freshDatabase } from "./database.js";

/** The old service's table, as it made it by hand (unquoted, so PostgreSQL folds the names). */
export function createLegacyTable(db: Database) {
  return db.execute(sql`create table Contact (
    id serial primary key,
    phoneNumber varchar,
    email varchar,
    linkedId int,
    linkPrecedence varchar,
    createdAt timestamp not null default now(),
    updatedAt timestamp not null default now(),
    deletedAt timestamp
  )`);
}

/** Creates the source afresh; drop() removes it. */
export async function createLegacySource(adminUrl: string, rows: number) {
  const source = await freshDatabase(adminUrl, "identify_bench_legacy");
  const { db } = source.connection;
  await createLegacyTable(db);
  await db.execute(sql`
    insert into Contact (id, phoneNumber, email, linkedId, linkPrecedence, createdAt, updatedAt)
    select g, '+44' || (7000000000 + g)::text, 'legacy' || g || '@old.example',
           case when g % 3 = 0 then g - 1 when g % 27 = 1 and g > 1 then g - 1 end,
           case when g % 3 = 0 or (g % 27 = 1 and g > 1) then 'secondary' else 'primary' end,
           timestamp '2019-01-01' + g * interval '1 minute',
           timestamp '2019-01-01' + g * interval '1 minute'
      from generate_series(1, ${rows}::int) g`);
  return source;
}
