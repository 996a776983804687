/**
 * Import from the service identify replaces (the Express "contactIdentifierAPI"), whose
 * `Contact` table holds years of customers. Its data cannot simply be copied: it stored
 * values unnormalized, it left chains of secondaries (C → B → A) and customers split into
 * two primaries that share an email or phone, and it kept rows the target's constraints
 * refuse (a link to a missing row or to itself, a precedence that disagrees with the link,
 * the same email and phone twice). This module copies the rows, keeping ids and
 * timestamps, normalizes them with the very schemas requests go through, makes every row
 * acceptable to the target, then settles every customer with `identify_settle_all` so the
 * result obeys the same invariants as data written by `/identify`.
 *
 * How, and why this way:
 * - One transaction on the target: a failed import leaves nothing half-done.
 * - The source is read in batches (keyset by id) inside one read-only, repeatable-read
 *   transaction (one consistent snapshot, and nothing can be written there), so a large
 *   table never has to fit in memory.
 * - Each batch is normalized here and written with one `unnest` statement into a temporary
 *   staging table on the target. Deciding what to skip, which duplicate to keep and whether
 *   a link is usable needs every row (a link may point at a row of a later batch), so those
 *   decisions are made in SQL over the staging table, and the rows are then copied into
 *   `contacts` in one INSERT … SELECT: `linked_id` references `contacts.id`, and PostgreSQL
 *   checks that reference at the end of the statement, so links may point forward.
 * - `contacts` is locked in EXCLUSIVE mode from its first write to the commit: every writer
 *   (a request's locked path, an erasure) takes ROW EXCLUSIVE before it reads, so it waits
 *   instead of deciding on a table about to change under it, while plain reads go through:
 *   a lookup answers from the state before the import, without waiting
 *   (drizzle/functions/identify_contact.sql, path A).
 * - An erasure holds (docs/privacy.md): the source still has every erased row, and without a
 *   check a second run would bring them back with their old ids. So a row whose id an
 *   `erasures` record lists is skipped, and so is a live row with the same values as one of
 *   them (an earlier run skipped it as that row's duplicate, so the erasure never saw it).
 *   Ids do not reach a row the erasure never saw under any id: a duplicate of a contact a
 *   request created, a row the old service wrote later. So a row is skipped too when its
 *   email or phone number is on the erased-values list, the keyed hash of every value an
 *   erasure took (the erased_values table, written by a trigger on the erasure's delete);
 *   a junk value never suppresses a row, as it never links one. These checks run after the
 *   lock: `npm run forget` takes ROW EXCLUSIVE on `contacts` before it reads, so an erasure
 *   either committed before it and is seen, or waits for the import to commit.
 * - The old service's table comes in two shapes: created by hand, unquoted (`contact`,
 *   `phonenumber`, …, as PostgreSQL folds them), or by Prisma, quoted (`"Contact"`,
 *   `"phoneNumber"`, …). Columns are matched case-insensitively, so either reads the same.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "./db/client.js";
import { queryRows, sqlArray } from "./db/query.js";
import { optionsJsonb } from "./db/sql-contract.js";
import type { Guardrails } from "./guardrails.js";
import { EmailSchema, normalizeIdentifier, PhoneNumberSchema } from "./input.js";

/** Rows read from the source per query, and written to staging per statement. */
const DEFAULT_IMPORT_BATCH_SIZE = 5_000;

/**
 * The names the old service's table goes by: unquoted (PostgreSQL folds it to `contact`), or
 * Prisma's quoted `"Contact"`. Both existing is refused: which one is the service's is a guess.
 */
const SOURCE_TABLES = ["contact", '"Contact"'] as const;

/** The columns read, by their lower-case names; each table names them in its own case. */
const SOURCE_COLUMNS = [
  "id",
  "phonenumber",
  "email",
  "linkedid",
  "linkprecedence",
  "createdat",
  "updatedat",
  "deletedat",
] as const;
type SourceColumn = (typeof SOURCE_COLUMNS)[number];

/** The temporary table each run stages the source rows in; dropped at commit. */
const STAGING = "identify_import_rows";

interface ImportOptions {
  /** Rows per source query and per staging write (default {@link DEFAULT_IMPORT_BATCH_SIZE}). */
  batchSize?: number;
  /** Recorded on every identity event of the run (default `import:<ISO time>`). */
  requestId?: string;
  /** Junk values never link customers while settling, as for requests (default none). */
  guardrails?: Guardrails;
  /** Called after each batch read from the source, with the total read so far. */
  onProgress?: (rowsRead: number) => void;
}

/** What one run read, imported and repaired. Every row read is counted exactly once among
 * `imported`, `alreadyPresent`, `skippedErased`, `skippedInvalid` and `skippedDuplicate`. */
export interface ImportReport {
  /** Recorded on the run's 'imported' and 'relinked' identity events. */
  requestId: string;
  /** Rows read from the source table. */
  rowsRead: number;
  /** Rows copied into contacts (one 'imported' event each). */
  imported: number;
  /** Rows whose id the target already holds (an earlier run): left as they are. */
  alreadyPresent: number;
  /** Rows not imported because a person was erased (`npm run forget`): their id is in an
   * `erasures` record, they are live rows with the same email and phone as such a row, or
   * their email or phone number is one an erasure took (the erased-values list). */
  skippedErased: number;
  /** Rows left with neither a valid email nor a valid phone number: not imported. */
  skippedInvalid: number;
  /** Live rows whose normalized (email, phone) another live row already has: not imported. */
  skippedDuplicate: number;
  /** Emails that were invalid after normalization, dropped from their row (rows neither
   * already present nor erased). */
  emailsDropped: number;
  /** Phone numbers invalid after normalization, dropped from their row (rows neither already
   * present nor erased). */
  phoneNumbersDropped: number;
  /** Imported rows whose link to a skipped duplicate was moved to the row kept instead. */
  linksRepointed: number;
  /** Imported rows the source linked (or marked secondary) that were inserted as primaries:
   * their link pointed at a missing, skipped or erased row or at themselves, or disagreed with
   * their precedence. Settling then links them by their email and phone. */
  linksReset: number;
  /** Contacts whose primary changed when every customer was settled ('relinked' events). */
  relinked: number;
}

/** A source row as read: timestamps already rendered as UTC ISO strings. */
interface SourceRow {
  id: number;
  email: string | null;
  phone_number: string | null;
  linked_id: number | null;
  precedence: string | null;
  created_at: string | null;
  updated_at: string | null;
  deleted_at: string | null;
}

/**
 * Imports the old service's Contact table (`contact` or Prisma's `"Contact"`) from `source`
 * into `target`, then settles every
 * customer of the target. Only reads from `source`. All writes to `target` happen in one
 * transaction: on any error nothing is imported (the id sequence, which PostgreSQL never
 * rolls back, may have moved forward; that only leaves a gap in future ids).
 *
 * Per row: ids, `createdat`, `updatedat` and `deletedat` are kept (the source's timestamps
 * have no time zone and are read as UTC); email and phone number are normalized like request
 * input, an invalid one is dropped; a row left with neither is skipped. A row whose id the
 * target already has is left alone, so running the import again imports nothing twice. A
 * row an erasure took is skipped (see the module comment), and a link to it is unusable.
 * Among live rows with the same normalized (email, phone) only the oldest is imported (or
 * the target's existing contact is kept), and links to a skipped duplicate are re-pointed to
 * it. A row whose link is unusable is imported as a primary. Each imported row gets an
 * 'imported' identity event; settling records a 'relinked' event per contact it changes.
 *
 * @param target the identify database, migrated.
 * @param source the old service's database.
 * @throws when the source has no Contact table of the expected shape, or both `contact` and
 *   `"Contact"`, or on any database
 *   error (after rolling the target back).
 */
export async function importFromLegacy(
  target: Database,
  source: Database,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const requestId = options.requestId ?? `import:${new Date().toISOString()}`;
  const batchSize = options.batchSize ?? DEFAULT_IMPORT_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  }

  return target.transaction(async (tx) => {
    await tx.execute(
      sql.raw(`create temp table ${STAGING} (
        id integer primary key,
        email text,
        phone_number text,
        email_dropped boolean not null,
        phone_dropped boolean not null,
        source_linked_id integer,
        source_precedence text,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        deleted_at timestamptz,
        status text check (status in ('present', 'erased', 'invalid', 'duplicate', 'import')),
        kept_id integer,
        linked_id integer
      ) on commit drop`),
    );
    await stageSource(tx, source, batchSize, options.onProgress);
    // Autovacuum never analyzes temporary tables; the statements below join this one.
    await tx.execute(sql.raw(`analyze ${STAGING}`));

    await tx.execute(sql`lock table contacts in exclusive mode`);
    await classify(tx, options.guardrails ?? {});
    await resolveLinks(tx);
    await tx.execute(sql`
      with inserted as (
        insert into contacts
          (id, email, phone_number, linked_id, link_precedence, created_at, updated_at, deleted_at)
        overriding system value
        select id, email, phone_number, linked_id,
               (case when linked_id is null then 'primary' else 'secondary' end)::link_precedence,
               created_at, updated_at, deleted_at
          from ${sql.raw(STAGING)}
         where status = 'import'
        returning id, linked_id
      )
      insert into identity_events (request_id, kind, contact_id, new_primary_id)
      select ${requestId}, 'imported', i.id, coalesce(i.linked_id, i.id)
        from inserted i order by i.id`);
    // Identity columns only hand out ids above the sequence: move it past the kept ids.
    await tx.execute(sql`
      select setval(s.seq, m.max_id)
        from (select pg_get_serial_sequence('contacts', 'id')::regclass as seq) s,
             (select max(id) as max_id from contacts) m
       where m.max_id > coalesce(pg_sequence_last_value(s.seq), 0)`);

    // Settling runs a few small queries per customer, planned from the table's statistics;
    // without fresh ones (a new database, or this many new rows) the planner scans whole
    // partial indexes per customer, about ten times slower. ANALYZE sees this transaction's rows.
    await tx.execute(sql`analyze contacts`);
    const [settled] = await queryRows<{ changed: number }>(
      tx,
      sql`select identify_settle_all(${requestId}, ${optionsJsonb(options.guardrails ?? {})}) as changed`,
    );
    const counts = await countStaged(tx);
    return { requestId, ...counts, relinked: Number(settled?.changed ?? 0) };
  });
}

/** Reads the source in id order, batch by batch, and stages each batch normalized. */
async function stageSource(
  target: Database,
  source: Database,
  batchSize: number,
  onProgress: ((rowsRead: number) => void) | undefined,
): Promise<void> {
  await source.transaction(
    async (src) => {
      const { select, id } = await sourceSelect(src);
      let lastId: number | null = null;
      let rowsRead = 0;
      for (;;) {
        const after: SQL = lastId === null ? sql`true` : sql`${id} > ${lastId}`;
        const rows = await queryRows<SourceRow>(
          src,
          sql`${select} where ${after} order by ${id} limit ${batchSize}`,
        );
        const last = rows.at(-1);
        if (!last) break;
        await stageBatch(target, rows);
        rowsRead += rows.length;
        onProgress?.(rowsRead);
        lastId = Number(last.id);
        if (rows.length < batchSize) break;
      }
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}

/** A double-quoted SQL identifier. */
const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * The SELECT list over the source table and its id column, after finding it and checking it has the expected
 * columns. Timestamps are rendered as ISO strings in UTC (microseconds kept): a `timestamp
 * without time zone` is taken as UTC, a `timestamp with time zone` converted to UTC.
 */
async function sourceSelect(src: Database): Promise<{ select: SQL; id: SQL }> {
  const tables = await queryRows<{ relation: string; oid: string }>(
    src,
    sql`select to_regclass(t.name)::text as relation, to_regclass(t.name)::oid::text as oid
          from unnest(${sqlArray(SOURCE_TABLES, "text")}) with ordinality t(name, n)
         where to_regclass(t.name) is not null
         order by t.n`,
  );
  const [table] = tables;
  if (!table) {
    throw new Error(
      `The source database has no table ${SOURCE_TABLES.join(" or ")} (the old service's Contact table) on its search_path`,
    );
  }
  if (tables.length > 1) {
    throw new Error(
      `The source database has both ${tables.map((t) => t.relation).join(" and ")}; which one is the old service's Contact table? Rename or move the other one (another schema off the search_path) and run the import again`,
    );
  }
  const columns = await queryRows<{ name: string; type: string }>(
    src,
    sql`select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type
          from pg_attribute a
         where a.attrelid = ${table.oid}::oid and a.attnum > 0 and not a.attisdropped`,
  );
  const found = new Map<SourceColumn, { name: string; type: string }>();
  for (const wanted of SOURCE_COLUMNS) {
    const matches = columns.filter((column) => column.name.toLowerCase() === wanted);
    if (matches.length > 1) {
      throw new Error(
        `The source table ${table.relation} has the columns ${matches.map((m) => quoted(m.name)).join(" and ")}; which one to read is a guess`,
      );
    }
    if (matches[0]) found.set(wanted, matches[0]);
  }
  const missing = SOURCE_COLUMNS.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new Error(
      `The source table ${table.relation} lacks the column(s) ${missing.join(", ")} (in any case); is it the old service's Contact table?`,
    );
  }
  const column = (name: SourceColumn) => quoted(found.get(name)?.name ?? name);
  const utc = (name: SourceColumn) => {
    // format_type spells a precision inside the name: "timestamp(3) with time zone" (Prisma).
    const value = /^timestamp(\(\d+\))? with time zone$/.test(found.get(name)?.type ?? "")
      ? `(${column(name)} at time zone 'UTC')`
      : `${column(name)}::timestamp`;
    return `to_char(${value}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  };
  // Keyset paging compares and orders by the table's own id column, so its index serves.
  const select = sql.raw(`select ${column("id")}::integer as id,
           ${column("email")}::text as email,
           ${column("phonenumber")}::text as phone_number,
           ${column("linkedid")}::integer as linked_id,
           ${column("linkprecedence")}::text as precedence,
           ${utc("createdat")} as created_at,
           ${utc("updatedat")} as updated_at,
           ${utc("deletedat")} as deleted_at
      from ${table.relation}`);
  return { select, id: sql.raw(column("id")) };
}

/** Writes one batch, normalized, into the staging table: one statement, one array per column. */
async function stageBatch(target: Database, rows: readonly SourceRow[]): Promise<void> {
  const columns = {
    id: [] as number[],
    email: [] as (string | null)[],
    phone: [] as (string | null)[],
    emailDropped: [] as boolean[],
    phoneDropped: [] as boolean[],
    linkedId: [] as (number | null)[],
    precedence: [] as (string | null)[],
    createdAt: [] as (string | null)[],
    updatedAt: [] as (string | null)[],
    deletedAt: [] as (string | null)[],
  };
  for (const row of rows) {
    // Null when absent or blank; undefined, and so dropped, when invalid.
    const email = normalizeIdentifier(EmailSchema, row.email);
    const phone = normalizeIdentifier(PhoneNumberSchema, row.phone_number);
    columns.id.push(Number(row.id));
    columns.email.push(email ?? null);
    columns.phone.push(phone ?? null);
    columns.emailDropped.push(email === undefined);
    columns.phoneDropped.push(phone === undefined);
    columns.linkedId.push(row.linked_id === null ? null : Number(row.linked_id));
    columns.precedence.push(row.precedence);
    columns.createdAt.push(row.created_at);
    columns.updatedAt.push(row.updated_at);
    columns.deletedAt.push(row.deleted_at);
  }
  await target.execute(sql`
    insert into ${sql.raw(STAGING)} (id, email, phone_number, email_dropped, phone_dropped,
      source_linked_id, source_precedence, created_at, updated_at, deleted_at)
    select u.id, u.email, u.phone_number, u.email_dropped, u.phone_dropped,
           u.linked_id, u.precedence,
           coalesce(u.created_at, u.updated_at, now()), coalesce(u.updated_at, u.created_at, now()),
           u.deleted_at
      from unnest(${sqlArray(columns.id, "integer")}, ${sqlArray(columns.email, "text")},
                  ${sqlArray(columns.phone, "text")}, ${sqlArray(columns.emailDropped, "boolean")},
                  ${sqlArray(columns.phoneDropped, "boolean")}, ${sqlArray(columns.linkedId, "integer")},
                  ${sqlArray(columns.precedence, "text")}, ${sqlArray(columns.createdAt, "timestamptz")},
                  ${sqlArray(columns.updatedAt, "timestamptz")},
                  ${sqlArray(columns.deletedAt, "timestamptz")})
        as u(id, email, phone_number, email_dropped, phone_dropped, linked_id, precedence,
             created_at, updated_at, deleted_at)`);
}

/**
 * Decides each staged row's fate, in this order: already present in the target; erased (its
 * id is in an `erasures` record, or it carries a non-junk value on the erased-values list);
 * invalid (no identifier left); erased too when live with the
 * same (email, phone) as a live erased row, of which an earlier run took it for a duplicate;
 * duplicate of a live (email, phone) pair that is kept elsewhere — the target's existing
 * contact, else the oldest staged row; or imported.
 */
async function classify(tx: Database, guardrails: Guardrails): Promise<void> {
  const staging = sql.raw(STAGING);
  await tx.execute(sql`
    update ${staging} s set status = 'present'
     where exists (select 1 from contacts c where c.id = s.id)`);
  // One join of the staging table against every erased id: erasures holds a row per erased
  // customer, so this is small next to the staging table, and is read once, not per row.
  await tx.execute(sql`
    update ${staging} s set status = 'erased'
      from (select distinct unnest(e.contact_ids) as id from erasures e) erased
     where s.id = erased.id and s.status is null`);
  await suppressErasedValues(tx, guardrails);
  await tx.execute(sql`
    update ${staging} set status = 'invalid'
     where status is null and email is null and phone_number is null`);
  await tx.execute(sql`
    update ${staging} s set status = 'erased'
     where s.status is null and s.deleted_at is null
       and (coalesce(s.email, ''), coalesce(s.phone_number, '')) in (
             select coalesce(x.email, ''), coalesce(x.phone_number, '')
               from ${staging} x
              where x.status = 'erased' and x.deleted_at is null)`);
  await tx.execute(sql`
    update ${staging} s set status = 'duplicate', kept_id = k.kept_id
      from (select x.id,
                   coalesce(
                     (select c.id from contacts c
                       where c.deleted_at is null
                         and coalesce(c.email, '') = coalesce(x.email, '')
                         and coalesce(c.phone_number, '') = coalesce(x.phone_number, '')),
                     first_value(x.id) over (
                       partition by coalesce(x.email, ''), coalesce(x.phone_number, '')
                       order by x.created_at, x.id)) as kept_id
              from ${staging} x
             where x.status is null and x.deleted_at is null) k
     where s.id = k.id and k.kept_id <> s.id`);
  await tx.execute(sql`update ${staging} set status = 'import' where status is null`);
}

/**
 * Marks erased every unclassified row, live or deleted, whose email or phone number is on the
 * erased-values list: its keyed hash (identify_erased_value_hash, under erasure_key) is in
 * erased_values. Without a key no erasure has recorded a value, and the join matches nothing.
 * A junk value (the guardrails') is no one's, so it suppresses nothing. One statement, one
 * primary-key probe per value; the junk lists are read once.
 */
async function suppressErasedValues(tx: Database, guardrails: Guardrails): Promise<void> {
  const staging = sql.raw(STAGING);
  const listed = (kind: "email" | "phone", value: SQL, junk: SQL, patterns: SQL) => sql`(
    exists (select 1 from erased_values ev
             where ev.kind = ${kind}
               and ev.value_hash = identify_erased_value_hash(${kind}, ${value}, k.inner_pad, k.outer_pad))
    and not identify_is_junk(${value}, ${junk}, ${patterns}))`;
  await tx.execute(sql`
    update ${staging} s set status = 'erased'
      from erasure_key k,
           (select identify_junk_list(o, 'junkEmails') as emails,
                   identify_junk_list(o, 'junkEmailPatterns') as email_patterns,
                   identify_junk_list(o, 'junkPhones') as phones,
                   identify_junk_list(o, 'junkPhonePatterns') as phone_patterns
              from (select ${optionsJsonb(guardrails)} as o) given) j
     where s.status is null
       and (${listed("email", sql`s.email`, sql`j.emails`, sql`j.email_patterns`)}
            or ${listed("phone", sql`s.phone_number`, sql`j.phones`, sql`j.phone_patterns`)})`);
}

/**
 * The link each imported row is inserted with: the source's, when the row is a secondary
 * that names another row; re-pointed from a skipped duplicate to the row kept instead; and
 * none (a primary) when it names the row itself or a row neither in the target nor imported
 * (missing from the source, skipped, or erased: a link never brings an erased row back).
 */
async function resolveLinks(tx: Database): Promise<void> {
  const staging = sql.raw(STAGING);
  await tx.execute(sql`
    update ${staging} s
       set linked_id = coalesce(
             (select d.kept_id from ${staging} d
               where d.id = s.source_linked_id and d.status = 'duplicate'),
             s.source_linked_id)
     where s.status = 'import'
       and s.source_linked_id is not null
       and lower(btrim(s.source_precedence)) = 'secondary'`);
  await tx.execute(sql`
    update ${staging} s set linked_id = null
     where s.status = 'import'
       and s.linked_id is not null
       and (s.linked_id = s.id
            or (not exists (select 1 from contacts c where c.id = s.linked_id)
                and not exists (select 1 from ${staging} t
                                 where t.id = s.linked_id and t.status = 'import')))`);
}

async function countStaged(tx: Database): Promise<Omit<ImportReport, "requestId" | "relinked">> {
  const [row] = await queryRows<Omit<ImportReport, "requestId" | "relinked">>(
    tx,
    sql`select
      count(*)::int as "rowsRead",
      count(*) filter (where status = 'import')::int as "imported",
      count(*) filter (where status = 'present')::int as "alreadyPresent",
      count(*) filter (where status = 'erased')::int as "skippedErased",
      count(*) filter (where status = 'invalid')::int as "skippedInvalid",
      count(*) filter (where status = 'duplicate')::int as "skippedDuplicate",
      count(*) filter (where status not in ('present', 'erased') and email_dropped)::int as "emailsDropped",
      count(*) filter (where status not in ('present', 'erased') and phone_dropped)::int as "phoneNumbersDropped",
      count(*) filter (where status = 'import' and linked_id <> source_linked_id)::int
        as "linksRepointed",
      count(*) filter (where status = 'import' and linked_id is null
                         and (source_linked_id is not null
                              or lower(btrim(coalesce(source_precedence, ''))) <> 'primary'))::int
        as "linksReset"
      from ${sql.raw(STAGING)}`,
  );
  if (!row) throw new Error("the import's count query returned no row");
  return row;
}

/** The report as a few readable lines, for the command line. */
export function formatImportReport(report: ImportReport): string {
  const plural = (count: number, one: string, many = `${one}s`) =>
    `${count} ${count === 1 ? one : many}`;
  const skipped = report.skippedInvalid + report.skippedDuplicate;
  const dropped = report.emailsDropped + report.phoneNumbersDropped;
  const repaired = report.linksRepointed + report.linksReset;
  return [
    `Import ${report.requestId}`,
    `  rows read             ${report.rowsRead}`,
    `  imported              ${report.imported}`,
    `  already present       ${report.alreadyPresent} (left as they were)`,
    `  erased, not imported  ${report.skippedErased} (erased by npm run forget; erase them from the source too)`,
    `  skipped               ${skipped} (${report.skippedInvalid} with no valid email or phone, ${plural(report.skippedDuplicate, "duplicate")})`,
    `  values dropped        ${dropped} (${plural(report.emailsDropped, "invalid email")}, ${plural(report.phoneNumbersDropped, "invalid phone number")})`,
    `  links repaired        ${repaired} (${report.linksRepointed} re-pointed from a skipped duplicate, ${report.linksReset} unusable, imported as primaries)`,
    `  relinked by settling  ${report.relinked}`,
  ].join("\n");
}
