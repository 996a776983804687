/**
 * Undoing an over-merge: makes customers what the guardrails now say they are
 * (drizzle/functions/identify_relink.sql decides and writes, one customer per statement,
 * under the locks POST /identify takes). A customer is a connected component of contacts
 * linked by shared values that are not junk, its oldest live contact the primary; so a
 * relink splits customers joined only through a value listed as junk since, and joins
 * customers that share a value taken off the list. `npm run relink` is its command line, and
 * the deploy build asks {@link guardrailChangeNotice} how many customers a changed junk list
 * leaves to relink. Nothing here returns or prints an email or a phone number: counts and
 * contact ids only, since the output goes into tickets.
 */
import { sql } from "drizzle-orm";
import { readConfig } from "./config.js";
import type { Database } from "./db/client.js";
import { readDeployment } from "./db/deployment.js";
import { queryRows } from "./db/query.js";
import { optionsJsonb } from "./db/sql-contract.js";
import { type CustomerSelector, RELINK_REQUEST_PREFIX, selectorArguments } from "./explain.js";
import type { Guardrails } from "./guardrails.js";
import { describeError } from "./redact.js";

/** A customer as a relink leaves it (or, in a dry run, would leave it). */
interface RelinkedCustomer {
  /** Its primary: the oldest live contact. */
  primaryId: number;
  /** Its live contacts, ascending. */
  contactIds: number[];
  /** Those of them whose primary changes, ascending. */
  movedIds: number[];
  /** The primaries its contacts had before, ascending. */
  previousPrimaryIds: number[];
  /**
   * Whether it carries a value (a junk one: it does not link) that another customer of the
   * result carries too. One split off that shares none was joined by a request that brought
   * one customer's email with another's phone (README, rule 4): no stored value backs it.
   */
  sharesValue: boolean;
}

/** What one relink found: every customer it reached, as it leaves them. */
export interface RelinkResult {
  /** Empty when nothing matched. */
  customers: RelinkedCustomer[];
  dryRun: boolean;
}

export interface RelinkOptions {
  /** Recorded on every 'relinked' identity event; starts with {@link RELINK_REQUEST_PREFIX}. */
  requestId: string;
  /** Lock, read and decide, but write nothing. */
  dryRun?: boolean;
  /**
   * Longest wait for each lock; 0 waits forever. Absent: DB_LOCK_TIMEOUT_MS's default
   * (lib/config.ts), the one place that default is written.
   */
  lockTimeoutMs?: number;
  /**
   * The guardrails in force (the deployment's record): only the junk lists count. There is
   * no cap: a customer over it is what most needs relinking.
   */
  guardrails: Guardrails;
}

/** A new request id for the events of one relink run. */
export const newRelinkRequestId = () => `${RELINK_REQUEST_PREFIX}${crypto.randomUUID()}`;

/** The junk lists alone: the cap decides nothing about who is linked to whom. */
function junkOnly(guardrails: Guardrails): Guardrails {
  const { maxContacts: _cap, ...junk } = guardrails;
  return junk;
}

interface RelinkRow {
  primary_id: number;
  contact_ids: number[];
  moved_ids: number[];
  old_primary_ids: number[];
  shares_value: boolean;
}

/**
 * Relinks the customer the selector reaches (every customer, when it names a value that
 * several carry), in one statement.
 * @throws the database's error (a lock timeout, …); its message may quote nothing of the
 * selector only once passed through lib/redact.ts's describeError, which the tools do.
 */
export async function relinkCustomer(
  db: Database,
  selector: CustomerSelector,
  options: RelinkOptions,
): Promise<RelinkResult> {
  const { email, phone, id } = selectorArguments(selector);
  const { requestId, dryRun = false, lockTimeoutMs = readConfig({}).DB_LOCK_TIMEOUT_MS } = options;
  const rows = await queryRows<RelinkRow>(
    db,
    sql`select primary_id, contact_ids, moved_ids, old_primary_ids, shares_value
          from identify_relink(${email}::text, ${phone}::text, ${id}::integer,
                               ${optionsJsonb({ requestId, lockTimeoutMs, dryRun, ...junkOnly(options.guardrails) })})`,
  );
  return {
    customers: rows.map((row) => ({
      primaryId: row.primary_id,
      contactIds: row.contact_ids,
      movedIds: row.moved_ids,
      previousPrimaryIds: row.old_primary_ids,
      sharesValue: row.shares_value,
    })),
    dryRun,
  };
}

/**
 * The customers as they were before, that the relink changes (splits, joins or re-primaries):
 * none when no contact moves.
 */
export function changedCustomers(result: RelinkResult): number[] {
  if (!result.customers.some((customer) => customer.movedIds.length > 0)) return [];
  const before = new Set(result.customers.flatMap((customer) => customer.previousPrimaryIds));
  return [...before].sort((a, b) => a - b);
}

/** How many contact ids a line shows before it says how many more there are. */
const IDS_SHOWN = 50;

function ids(list: readonly number[]): string {
  const shown = list.slice(0, IDS_SHOWN).join(", ");
  return list.length > IDS_SHOWN ? `${shown} … and ${list.length - IDS_SHOWN} more` : shown;
}

const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;

/** What a relink did (or would do), in counts and contact ids only. */
export function formatRelinkResult(result: RelinkResult): string {
  const before = changedCustomers(result);
  if (before.length === 0) {
    const sizes = result.customers.map(
      (c) => `customer ${c.primaryId} (${plural(c.contactIds.length, "contact")})`,
    );
    const are = sizes.length === 1 ? "is" : "are";
    return `Nothing to relink: ${sizes.join(", ")} ${are} already as the guardrails say. Nothing was written.`;
  }
  const after = result.customers.filter((c) =>
    c.previousPrimaryIds.some((id) => before.includes(id)),
  );
  const verb = result.dryRun ? "Would relink" : "Relinked";
  return [
    `${verb} ${plural(before.length, "customer")} (${ids(before)}) into ${plural(after.length, "customer")}:`,
    ...after.map((c) => {
      const moved =
        c.movedIds.length > 0
          ? `; moved ${plural(c.movedIds.length, "contact")}: ${ids(c.movedIds)}`
          : "";
      const unbacked =
        after.length > 1 && !c.sharesValue
          ? " (shares no value with the others: a request joined it, README rule 4)"
          : "";
      return `  customer ${c.primaryId}: ${plural(c.contactIds.length, "contact")}: ${ids(c.contactIds)}${moved}${unbacked}`;
    }),
    ...(result.dryRun ? ["Dry run: nothing was written."] : []),
  ].join("\n");
}

/** How many live contacts `relink --all` reads per query of the table. */
const CHUNK = 1_000;

/** Where `relink --all` stands, after each chunk. */
export interface RelinkProgress {
  /** The last contact id read so far, and the largest id when the walk began. */
  throughId: number;
  lastId: number;
  /** Customers seen, and those the walk changed (or would change). */
  customersSeen: number;
  customersChanged: number;
  contactsMoved: number;
}

/**
 * Relinks every customer: the live contacts are read in chunks of {@link CHUNK} by id, and
 * the customer of each one not yet seen is relinked in a statement of its own, so a customer
 * is never half relinked and the walk can be stopped anywhere and run again (what is already
 * relinked is left as it is, writing nothing). `onCustomer` hears each relink that changes
 * something, `onProgress` where the walk is after each chunk.
 */
export async function relinkAll(
  db: Database,
  options: RelinkOptions,
  onProgress: (progress: RelinkProgress) => void,
  onCustomer: (result: RelinkResult) => void = () => {},
): Promise<RelinkProgress> {
  const [last] = await queryRows<{ id: number | null }>(
    db,
    sql`select max(id) as id from contacts`,
  );
  const progress: RelinkProgress = {
    throughId: 0,
    lastId: last?.id ?? 0,
    customersSeen: 0,
    customersChanged: 0,
    contactsMoved: 0,
  };
  const seen = new Set<number>();
  for (;;) {
    const [chunk] = await queryRows<{ ids: number[] }>(
      db,
      sql`select identify_relink_chunk(${progress.throughId}::integer, ${CHUNK}::integer) as ids`,
    );
    const contactIds = chunk?.ids ?? [];
    if (contactIds.length === 0) break;
    for (const id of contactIds) {
      if (seen.has(id)) continue;
      const result = await relinkCustomer(db, { id }, options);
      for (const customer of result.customers) {
        for (const member of customer.contactIds) seen.add(member);
      }
      progress.customersSeen += result.customers.length;
      const changed = changedCustomers(result);
      if (changed.length > 0) {
        progress.customersChanged += changed.length;
        progress.contactsMoved += result.customers.reduce((n, c) => n + c.movedIds.length, 0);
        onCustomer(result);
      }
    }
    progress.throughId = contactIds[contactIds.length - 1] ?? progress.throughId;
    onProgress({ ...progress });
  }
  return progress;
}

/**
 * The most values whose junk status changed that the deploy build relinks in a dry run to
 * count customers; past it, it says "at least", so a broad new pattern cannot make a build
 * slow.
 */
const NOTICE_VALUES = 1_000;

/** The four junk lists, each sorted: two guardrails with equal keys link alike. */
function junkKey(guardrails: unknown): string {
  const record = (guardrails ?? {}) as Record<string, unknown>;
  return JSON.stringify(
    ["junkEmails", "junkEmailPatterns", "junkPhones", "junkPhonePatterns"].map((key) =>
      Array.isArray(record[key]) ? [...(record[key] as string[])].sort() : [],
    ),
  );
}

/**
 * For the deploy build, before it records `guardrails`: when their junk lists differ from
 * those the previous build recorded in this database, how many customers `npm run relink --
 * --all` would change, and how to run it; undefined when nothing changed (or no build
 * recorded any). It relinks nothing: every customer carrying a value whose junk status
 * changed is relinked in a dry run (identify_relink_changed_values finds the values through
 * the indexes), which holds each customer's locks for a moment, as a lookup does. A failure
 * to count is reported in the text, never thrown: it must not fail a deployment. At most
 * {@link NOTICE_VALUES} values are counted from.
 */
export async function guardrailChangeNotice(
  db: Database,
  guardrails: Guardrails,
): Promise<string | undefined> {
  const previous = await readDeployment(db);
  if (!previous || junkKey(previous.guardrails) === junkKey(guardrails)) return undefined;
  const run =
    "DATABASE_URL=<this database> npm run relink -- --all --dry-run, then without --dry-run";
  try {
    const values = await queryRows<{ kind: "email" | "phone"; value: string }>(
      db,
      sql`select kind, value from identify_relink_changed_values(${JSON.stringify(previous.guardrails)}::jsonb,
                                                                 ${optionsJsonb(junkOnly(guardrails))})`,
    );
    const seen = new Set<number>();
    let changed = 0;
    const options = { requestId: newRelinkRequestId(), dryRun: true, guardrails };
    for (const { kind, value } of values.slice(0, NOTICE_VALUES)) {
      const selector = kind === "email" ? { email: value } : { phoneNumber: value };
      const result = await relinkCustomer(db, selector, options);
      const ids = result.customers.flatMap((customer) => customer.contactIds);
      if (ids.every((id) => seen.has(id))) continue;
      for (const id of ids) seen.add(id);
      changed += changedCustomers(result).length;
    }
    const atLeast = values.length > NOTICE_VALUES ? "at least " : "";
    return changed === 0 && !atLeast
      ? "The junk lists changed since the last deploy; no customer needs relinking."
      : `The junk lists changed since the last deploy: relink would change ${atLeast}${plural(changed, "customer")} ` +
          `(split through values now junk, or joined through values no longer junk). This build relinks nothing; ` +
          `run ${run} (README: "When strangers were merged").`;
  } catch (error) {
    return `The junk lists changed since the last deploy; counting the customers to relink failed (${describeError(error)}). Run ${run}.`;
  }
}
