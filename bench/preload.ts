/**
 * Bulk data for the bench, written with SQL rather than HTTP so a million contacts load in
 * seconds: realistic customers (1 to 4 contacts, secondaries pointing straight at the oldest
 * primary, created_at increasing with id, identifiers never shared between customers), pairs
 * of fresh customers for the merge workload, and a random sample of what is stored for the
 * lookup requests. Works on any database with the service's `contacts` columns (the minimal
 * implementation's too).
 */
import { sql } from "drizzle-orm";
import type { Database } from "../lib/db/client.js";
import { queryRows, sqlArray } from "../lib/db/query.js";

/**
 * The customer shapes and their share, in percent: one `eNpN` per contact, the customer's
 * n-th email and phone number (a missing letter: the contact has none). Contact 0 is the primary.
 * - 1 contact: email and phone (35), email only (10), phone only (5);
 * - 2: a new email on the same phone (15), a new phone with the same email (10), an
 *   email-only customer who later gave a phone (5);
 * - 3: both of the above (12);
 * - 4: those plus a customer merged in later, linked by id only (8).
 */
const SHAPES: { share: number; contacts: [e: number | null, p: number | null][] }[] = [
  [35, "e0p0"],
  [10, "e0"],
  [5, "p0"],
  [15, "e0p0 e1p0"],
  [10, "e0p0 e0p1"],
  [5, "e0 e0p0"],
  [12, "e0p0 e1p0 e0p1"],
  [8, "e0p0 e1p0 e0p1 e2p2"],
].map(([share, contacts]) => ({
  share: Number(share),
  contacts: String(contacts)
    .split(" ")
    .map((c): [number | null, number | null] => {
      const number = (key: string) => (c.includes(key) ? Number(c[c.indexOf(key) + 1]) : null);
      return [number("e"), number("p")];
    }),
}));

const FIRST_NAMES =
  "olivia liam emma noah ava oliver sophia elijah mia lucas amelia mateo harper levi aria ethan chloe arjun yuki fatima".split(
    " ",
  );
const LAST_NAMES =
  "smith garcia nguyen mueller rossi kowalski silva tanaka okafor brown patel kim johnson haddad novak lopez cohen dubois ivanova murphy".split(
    " ",
  );
const MAIL_DOMAINS = "gmail.com yahoo.com outlook.com icloud.com hotmail.com".split(" ");
const WORK_DOMAINS = "acme.io globex.com initech.com umbrella.co hooli.xyz".split(" ");
const OTHER_DOMAINS = "proton.me gmx.de fastmail.com".split(" ");

/**
 * Empties `contacts` and fills it with exactly `rows` contacts in realistic customer shapes,
 * then, if `analyze`, VACUUM (ANALYZE)s it so the planner sees the final table; without it
 * the planner keeps whatever it knew before, as on a table that grew with autovacuum behind.
 * Ids are given explicitly in created_at order and the
 * identity sequence is moved past them, so the service's own inserts continue the series.
 */
export async function preloadCustomers(
  db: Database,
  rows: number,
  analyze: boolean,
): Promise<number> {
  const started = performance.now();
  const shapeRows = SHAPES.flatMap((shape, index) =>
    shape.contacts.map(([e, p], j) => `(${index}, ${j}, ${e ?? "null"}, ${p ?? "null"})`),
  ).join(", ");
  // Cumulative shares turn a pseudo-random bucket 0..99 into a shape index.
  let cumulative = 0;
  const shapeOf = SHAPES.map((shape, index) => {
    cumulative += shape.share;
    return `when b.bucket < ${cumulative} then ${index}`;
  }).join(" ");
  if (cumulative !== 100) throw new Error("customer shape shares must add up to 100");

  // Customers are spread over three years; a customer's later contacts arrive 1 to 120 days
  // after its first one, interleaved with other customers, as they do in real traffic.
  const spreadSeconds = (3 * 365 * 24 * 3600) / rows;
  const hasEvents = await db.transaction(async (tx) => {
    await tx.execute(sql`set local work_mem = '256MB'`);
    // CASCADE also empties the tables that reference contacts (identity_events).
    await tx.execute(sql`truncate contacts restart identity cascade`);
    await tx.execute(sql`
      insert into contacts (id, email, phone_number, linked_id, link_precedence, created_at, updated_at)
      overriding system value
      select r.id, r.email, r.phone_number,
             case when r.j = 0 then null else r.primary_id end,
             (case when r.j = 0 then 'primary' else 'secondary' end)::link_precedence,
             r.created_at, r.created_at
        from (select n.*, min(n.id) over (partition by n.k) as primary_id
                from (select t.*, (row_number() over (order by t.created_at, t.k, t.j))::int as id
                        from (select b.k, s.j,
                                     case s.e
                                       when 0 then b.first || '.' || b.last || b.k || '@' || b.mail
                                       when 1 then b.first || b.last || b.k || '@' || b.work
                                       when 2 then b.last || '.' || b.first || b.k || '@' || b.other
                                     end as email,
                                     '+1' || (2000000000::bigint + b.k * 3 + s.p)::text as phone_number,
                                     timestamptz '2020-01-06 08:00:00+00'
                                       + b.k * ${spreadSeconds}::float8 * interval '1 second'
                                       + s.j * (1 + (b.k * 37) % 120) * interval '1 day'
                                       + s.j * ((b.k * 13) % 86400) * interval '1 second'
                                       as created_at,
                                     row_number() over (order by b.k, s.j) as position
                                from (select g.k,
                                             (${sqlArray(FIRST_NAMES, "text")})[1 + g.k % ${FIRST_NAMES.length}] as first,
                                             (${sqlArray(LAST_NAMES, "text")})[1 + (g.k / ${FIRST_NAMES.length}) % ${LAST_NAMES.length}] as last,
                                             (${sqlArray(MAIL_DOMAINS, "text")})[1 + g.k % ${MAIL_DOMAINS.length}] as mail,
                                             (${sqlArray(WORK_DOMAINS, "text")})[1 + g.k % ${WORK_DOMAINS.length}] as work,
                                             (${sqlArray(OTHER_DOMAINS, "text")})[1 + g.k % ${OTHER_DOMAINS.length}] as other,
                                             (g.k::bigint * 7919 + 17) % 100 as bucket
                                        from generate_series(0, ${rows - 1}::int) as g(k)) b
                                join (values ${sql.raw(shapeRows)}) as s(shape, j, e, p)
                                  on s.shape = (case ${sql.raw(shapeOf)} end)) t
                       where t.position <= ${rows}) n) r
       order by r.id`);
    await tx.execute(sql`select setval(pg_get_serial_sequence('contacts', 'id'), ${rows}::int)`);
    // A long-lived table has an audit trail as long as itself: one 'imported' event per
    // contact, when the schema has one.
    const [events] = await queryRows<{ present: boolean }>(
      tx,
      sql`select to_regclass('identity_events') is not null as present`,
    );
    if (events?.present) {
      await tx.execute(sql`
        insert into identity_events (occurred_at, request_id, kind, contact_id, new_primary_id)
        select created_at, 'bench-preload', 'imported', id, coalesce(linked_id, id)
          from contacts order by id`);
    }
    return events?.present === true;
  });
  if (analyze) {
    await db.execute(sql`vacuum (analyze) contacts`);
    if (hasEvents) await db.execute(sql`vacuum (analyze) identity_events`);
  }

  return (performance.now() - started) / 1000;
}

/** Two customers of one contact each; a request for `email` with `phoneNumber` joins them. */
export interface MergePair {
  email: string;
  phoneNumber: string;
  /** Identifiers of the newer customer, which the response must also carry. */
  otherEmail: string;
  otherPhoneNumber: string;
}

let pairSerial = 0;

/**
 * Inserts `count` pairs of fresh one-contact customers (all older halves first, so the
 * older customer stays primary after the merge) and returns one merge request per pair:
 * the older customer's email with the newer one's phone number.
 */
export async function prepareMergePairs(db: Database, count: number): Promise<MergePair[]> {
  const pairs: MergePair[] = [];
  if (count === 0) return pairs;
  for (let i = 0; i < count; i++) {
    const n = ++pairSerial;
    const first = FIRST_NAMES[n % FIRST_NAMES.length] ?? "alex";
    const last = LAST_NAMES[(n >> 3) % LAST_NAMES.length] ?? "doe";
    pairs.push({
      email: `${first}.${last}.m${n}@merge-a.example`,
      phoneNumber: `+61${400000000 + 2 * n}`,
      otherEmail: `${first}${last}.m${n}@merge-b.example`,
      otherPhoneNumber: `+61${400000001 + 2 * n}`,
    });
  }
  const emails = [...pairs.map((pair) => pair.email), ...pairs.map((pair) => pair.otherEmail)];
  const phones = [
    ...pairs.map((pair) => pair.phoneNumber),
    ...pairs.map((pair) => pair.otherPhoneNumber),
  ];
  // clock_timestamp() is evaluated after the ORDER BY, row by row in insertion order, so
  // created_at keeps increasing with the ids the identity hands out.
  await db.execute(sql`
    insert into contacts (email, phone_number, link_precedence, created_at, updated_at)
    select u.email, u.phone_number, 'primary', clock_timestamp(), clock_timestamp()
      from unnest(${sqlArray(emails, "text")}, ${sqlArray(phones, "text")})
           with ordinality as u(email, phone_number, n)
     order by u.n`);
  return pairs;
}

/** A stored contact's identifiers. */
export interface SampleContact {
  email: string | null;
  phoneNumber: string | null;
}

/** Up to `limit` live contacts, chosen at random across the whole table. */
export async function sampleContacts(db: Database, limit: number): Promise<SampleContact[]> {
  return queryRows<SampleContact>(
    db,
    sql`select email, phone_number as "phoneNumber" from contacts
         where deleted_at is null order by random() limit ${limit}`,
  );
}

/** Live contacts in the table now. */
export async function countContacts(db: Database): Promise<number> {
  const [row] = await queryRows<{ count: number }>(
    db,
    sql`select count(*)::int as count from contacts where deleted_at is null`,
  );
  return row?.count ?? 0;
}
