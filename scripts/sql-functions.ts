/**
 * SQL functions and triggers as source files. Each function of the database has one file,
 * drizzle/functions/<name>.sql, holding its current `CREATE OR REPLACE FUNCTION` text with the
 * design notes beside the code, and each trigger one file, drizzle/triggers/<name>.sql,
 * holding its `CREATE OR REPLACE TRIGGER` statement and why the table has it. The migrations
 * that install them are generated from those files, so a change reads as the diff of one file
 * plus a generated migration. (Migrations 0000–0006 predate this and stay as deployed
 * databases ran them; the triggers were hand-written in 0003 and 0017 until their files came.)
 *
 *   npm run db:functions -- --name=<what>   a drizzle-kit custom migration that installs every
 *                                           function and trigger whose file changed, and drops
 *                                           the ones whose file is gone (renamed), a function
 *                                           whose signature changed, a trigger whose table did
 *   npm run check:functions                 fails when a file differs from its copy in the
 *                                           latest migration carrying one, or when a freshly
 *                                           migrated database's functions or triggers differ
 *                                           from the files
 *
 * Functions and triggers go through one pipeline: a source file is an "SQL object source" of
 * a kind, and what differs between the kinds (the folder, how the catalog lists them, how
 * one is named and dropped) is in KINDS.
 *
 * PostgreSQL itself does the comparing: every file is run against a freshly migrated
 * database, and each object's definition (`pg_get_functiondef`, `pg_get_triggerdef`) must be
 * the same before and after, so layout PostgreSQL normalizes never counts as drift while any
 * change to a signature, a setting, a body, an event or a table does.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs, promisify } from "node:util";
import { type SQL, sql } from "drizzle-orm";
import { TransactionRollbackError } from "drizzle-orm/errors";
import type { Database } from "../lib/db/client.js";
import { databaseMessage, sqlState } from "../lib/db/errors.js";
import { applyMigrations } from "../lib/db/migrate.js";
import { queryRows } from "../lib/db/query.js";
import * as schema from "../lib/db/schema.js";

/** drizzle-kit's output folder: the migrations, their journal, functions/ and triggers/. */
const DRIZZLE_DIR = fileURLToPath(new URL("../drizzle", import.meta.url));

/**
 * The kinds of SQL object that have source files, in the order their files run: a trigger
 * executes a function, so functions come first (and are dropped last).
 */
const SQL_KINDS = ["function", "trigger"] as const;

/** A kind of SQL object that has source files. */
type SqlKind = (typeof SQL_KINDS)[number];

/** One function's or one trigger's source file. */
export interface SqlSource {
  kind: SqlKind;
  /** The object's name, which is the file's name without `.sql`. */
  name: string;
  /** The file as migrations and messages name it: `drizzle/<functions or triggers>/<name>.sql`. */
  label: string;
  text: string;
}

/** Something that disagrees, and the object it concerns. */
interface Problem {
  kind: SqlKind;
  name: string;
  message: string;
}

/** A function or a trigger as the database has it. */
interface DatabaseObject {
  kind: SqlKind;
  name: string;
  /** What tells it from others of its name: a function's identity arguments, a trigger's table. */
  identity: string;
  definition: string;
}

/** Everything that differs between the kinds; the rest of the pipeline is shared. */
interface KindRules {
  /** The folder of drizzle/ holding the files. */
  folder: string;
  /** A statement creating one (comments removed), capturing the name it is given. */
  creates: RegExp;
  /** How a file must begin, so that its migration replaces the object in place. */
  replaces: RegExp;
  /** Every one the public schema has, as rows of name, identity and definition. */
  list: SQL;
  /** The object as DROP and messages name it. */
  describe(object: DatabaseObject): string;
  /** Whether a file holds its one statement and nothing else. */
  oneStatement: boolean;
  /** The SQLSTATE with which CREATE OR REPLACE refuses a change it needs a DROP for, if any. */
  refusedReplace?: string;
}

// Extension members are the extension's, not the project's.
const LIST_FUNCTIONS = sql`
  select p.proname as name,
         pg_get_function_identity_arguments(p.oid) as identity,
         case when p.prokind = 'a' then 'aggregate' else pg_get_functiondef(p.oid) end as definition
    from pg_proc p
   where p.pronamespace = 'public'::regnamespace
     and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
   order by 1, 2`;

// Internal triggers belong to their constraints (foreign keys), and a partition's clone of a
// trigger to the parent's. Whether a trigger fires is no part of pg_get_triggerdef, but a
// migration can change it (ALTER TABLE … DISABLE TRIGGER) and running the file enables it
// again, so it is part of the definition compared.
const LIST_TRIGGERS = sql`
  select t.tgname as name,
         quote_ident(c.relname) as identity,
         pg_get_triggerdef(t.oid) || case t.tgenabled when 'O' then ''
                                                       when 'D' then ' (disabled)'
                                                       when 'R' then ' (enabled on replicas only)'
                                                       else ' (enabled always)' end as definition
    from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
   where c.relnamespace = 'public'::regnamespace
     and not t.tgisinternal
     and t.tgparentid = 0
     and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_class'::regclass and d.objid = c.oid
                        and d.deptype = 'e')
   order by 1, 2`;

const KINDS: Record<SqlKind, KindRules> = {
  function: {
    folder: "functions",
    creates: /\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([\w."]+)/gi,
    replaces: /^\s*CREATE\s+OR\s+REPLACE\s+FUNCTION\b/i,
    list: LIST_FUNCTIONS,
    describe: (f) => `${f.name}(${f.identity})`,
    // A body has semicolons of its own.
    oneStatement: false,
    // 42P13: the file changes the return type, a parameter name or a default.
    refusedReplace: "42P13",
  },
  trigger: {
    folder: "triggers",
    creates: /\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+([\w."]+)/gi,
    replaces: /^\s*CREATE\s+OR\s+REPLACE\s+(?:CONSTRAINT\s+)?TRIGGER\b/i,
    list: LIST_TRIGGERS,
    describe: (t) => `${t.name} ON ${t.identity}`,
    oneStatement: true,
  },
};

/** The file of an object: `drizzle/<folder>/<name>.sql`. */
const labelOf = (kind: SqlKind, name: string) => `drizzle/${KINDS[kind].folder}/${name}.sql`;

/** Whether two things concern the same object: the same kind and name. */
const same =
  (a: { kind: SqlKind; name: string }) =>
  (b: { kind: SqlKind; name: string }): boolean =>
    a.kind === b.kind && a.name === b.name;

const rank = (item: { kind: SqlKind }) => SQL_KINDS.indexOf(item.kind);
/** Functions first, then the triggers that may execute them; by name within a kind. */
const inRunOrder = <T extends { kind: SqlKind }>(items: readonly T[]) =>
  [...items].sort((a, b) => rank(a) - rank(b));
/** Triggers first, then the functions they may execute. */
const inDropOrder = <T extends { kind: SqlKind }>(items: readonly T[]) =>
  [...items].sort((a, b) => rank(b) - rank(a));

/** Every file in drizzle/functions and drizzle/triggers, functions first, by name. */
export async function readSqlSources(drizzleDir = DRIZZLE_DIR): Promise<SqlSource[]> {
  const sources: SqlSource[] = [];
  for (const kind of SQL_KINDS) {
    const folder = join(drizzleDir, KINDS[kind].folder);
    const files = await readdir(folder).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    });
    for (const file of files.filter((file) => file.endsWith(".sql")).sort()) {
      const name = file.slice(0, -".sql".length);
      const text = await readFile(join(folder, file), "utf8");
      sources.push({ kind, name, label: labelOf(kind, name), text });
    }
  }
  return sources;
}

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

async function readJournal(drizzleDir: string): Promise<Journal> {
  return JSON.parse(await readFile(join(drizzleDir, "meta", "_journal.json"), "utf8")) as Journal;
}

// A generated migration carries each file verbatim between these two lines.
const copyStart = (source: SqlSource) => `-- begin copy of ${source.label}\n`;
const copyEnd = (source: SqlSource) => `-- end copy of ${source.label}\n`;
const COPY = /^-- begin copy of (drizzle\/\w+\/\w+\.sql)\n([\s\S]*?)^-- end copy of \1$/gm;

/** Where a file was last copied into a migration, and the copy. */
interface MigratedCopy {
  migration: string;
  text: string;
}

/** The copy of each file in the latest migration that carries one, by the file's label. */
export async function readMigratedCopies(
  drizzleDir = DRIZZLE_DIR,
): Promise<Map<string, MigratedCopy>> {
  const copies = new Map<string, MigratedCopy>();
  for (const { tag } of (await readJournal(drizzleDir)).entries) {
    const text = await readFile(join(drizzleDir, `${tag}.sql`), "utf8");
    for (const [, label, copy] of text.matchAll(COPY)) {
      if (label !== undefined && copy !== undefined)
        copies.set(label, { migration: tag, text: copy });
    }
  }
  return copies;
}

/** What makes a file unusable as a source, whatever the migrations say; null when nothing. */
function malformed(source: SqlSource): string | null {
  const { kind, name, label } = source;
  const rules = KINDS[kind];
  const code = source.text.replace(/--[^\n]*/g, "");
  const declared = SQL_KINDS.flatMap((other) =>
    [...code.matchAll(KINDS[other].creates)].map((match) => `${other} ${match[1]}`),
  );
  if (declared.length !== 1 || declared[0] !== `${kind} ${name}`) {
    return `${label} must create exactly one ${kind}, named ${name} and not schema-qualified (it creates: ${declared.join(", ") || "none"})`;
  }
  if (!rules.replaces.test(code)) {
    return `${label} must use CREATE OR REPLACE ${kind.toUpperCase()}, so its migration can replace the ${kind} in place`;
  }
  if (source.text.includes("--> statement-breakpoint")) {
    return `${label} must not contain "--> statement-breakpoint": drizzle would split the ${kind} there`;
  }
  if (rules.oneStatement && code.trim().replace(/;$/, "").includes(";")) {
    return `${label} must hold its CREATE OR REPLACE ${kind.toUpperCase()} statement and nothing else`;
  }
  return null;
}

const GENERATE_HINT = "run npm run db:functions -- --name=<what_changed>";

/**
 * The text half of the check: each file must be well formed, and equal to its copy in the
 * latest migration that carries one, or the database would not have what the file says.
 */
export function sourceProblems(
  sources: readonly SqlSource[],
  copies: ReadonlyMap<string, MigratedCopy>,
): Problem[] {
  const problems: Problem[] = [];
  for (const source of sources) {
    const copy = copies.get(source.label);
    const message =
      malformed(source) ??
      (copy === undefined
        ? `${source.label} is in no migration yet: ${GENERATE_HINT}`
        : copy.text !== source.text
          ? `${source.label} changed since its copy in drizzle/${copy.migration}.sql: ${GENERATE_HINT}`
          : null);
    if (message) problems.push({ kind: source.kind, name: source.name, message });
  }
  return problems;
}

/** Every function and trigger of the public schema, functions first. */
async function listObjects(db: Database): Promise<DatabaseObject[]> {
  const objects: DatabaseObject[] = [];
  for (const kind of SQL_KINDS) {
    const rows = await queryRows<Omit<DatabaseObject, "kind">>(db, KINDS[kind].list);
    objects.push(...rows.map((row) => ({ kind, ...row })));
  }
  return objects;
}

/** How DROP and messages name an object: `name(args)`, or `name ON table` for a trigger. */
const describe = (object: DatabaseObject) => KINDS[object.kind].describe(object);

const dropStatement = (object: DatabaseObject) =>
  `DROP ${object.kind.toUpperCase()} ${describe(object)}`;

/** The first line where two definitions part, quoted, for a message. */
function firstDifference(database: string, file: string): string {
  const a = database.split("\n");
  const b = file.split("\n");
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  return `line ${at + 1} of the definition is ${JSON.stringify(a[at] ?? "(end)")} in the database, ${JSON.stringify(b[at] ?? "(end)")} in the file`;
}

/** The database half of the check, and what a migration would have to drop to fix it. */
interface DatabaseComparison {
  /** Files that do not run at all: no migration can install them. */
  broken: Problem[];
  /** Objects that differ between the files and the database. */
  problems: Problem[];
  /**
   * Objects a migration must drop: no file has them, or their file changed a function's
   * signature or a trigger's table.
   */
  stale: DatabaseObject[];
}

/**
 * Compares a migrated database's functions and triggers in the public schema with the files:
 * every object must have exactly one file and every file exactly one object, with the same
 * definition. Runs every file inside a transaction it rolls back, so the database is left as
 * it was.
 */
export function compareWithDatabase(
  db: Database,
  sources: readonly SqlSource[],
): Promise<DatabaseComparison> {
  return rolledBack(db, (tx) => applyAndCompare(tx, sources));
}

/** Runs `work` in a transaction that is always rolled back, and returns what it returned. */
export async function rolledBack<T>(db: Database, work: (tx: Database) => Promise<T>): Promise<T> {
  let result: { value: T } | undefined;
  try {
    await db.transaction(async (tx) => {
      result = { value: await work(tx) };
      tx.rollback();
    });
  } catch (error) {
    if (!(error instanceof TransactionRollbackError)) throw error;
  }
  if (!result) throw new Error("the transaction ended before its work did");
  return result.value;
}

async function applyAndCompare(
  tx: Database,
  sources: readonly SqlSource[],
): Promise<DatabaseComparison> {
  const before = await listObjects(tx);
  const broken: Problem[] = [];
  const problems: Problem[] = [];
  const stale: DatabaseObject[] = [];
  // Each file in a savepoint of its own, so one that fails leaves the others comparable.
  const run = (...statements: string[]) =>
    tx.transaction(async (savepoint) => {
      for (const statement of statements) await savepoint.execute(sql.raw(statement));
    });
  for (const source of inRunOrder(sources)) {
    const { refusedReplace } = KINDS[source.kind];
    const existing = before.find(same(source));
    try {
      await run(source.text).catch(async (error: unknown) => {
        // CREATE OR REPLACE refuses the change: the migration has to drop the old one first.
        if (!existing || !refusedReplace || sqlState(error) !== refusedReplace) throw error;
        await run(dropStatement(existing), source.text);
        stale.push(existing);
      });
    } catch (error) {
      broken.push({
        kind: source.kind,
        name: source.name,
        message: `${source.label} fails: ${databaseMessage(error)}`,
      });
    }
  }
  const after = await listObjects(tx);

  for (const orphan of before.filter((object) => !sources.some(same(object)))) {
    stale.push(orphan);
    problems.push({
      kind: orphan.kind,
      name: orphan.name,
      message: `${describe(orphan)} is in the migrated database but has no file ${labelOf(orphan.kind, orphan.name)}`,
    });
  }
  for (const source of sources) {
    if (broken.some(same(source))) continue;
    const was = before.filter(same(source));
    const now = after.filter(same(source));
    const replaced = stale.find(same(source));
    const add = (message: string) =>
      problems.push({ kind: source.kind, name: source.name, message });
    const old = was[0];
    if (was.length > 1) {
      add(
        `the migrated database has ${was.length} ${source.kind}s named ${source.name}: give each a name, and a file, of its own`,
      );
    } else if (replaced) {
      add(`${source.label} changes the signature of ${describe(replaced)}: ${GENERATE_HINT}`);
    } else if (old === undefined) {
      add(`${source.label} is not in the migrated database: ${GENERATE_HINT}`);
    } else if (now.length > 1) {
      const added = now.find((object) => object.identity !== old.identity);
      stale.push(old);
      add(
        `${source.label} declares ${added ? describe(added) : source.name} but the migrated database has ${describe(old)}: ${GENERATE_HINT}`,
      );
    } else if (now[0] && now[0].definition !== old.definition) {
      add(
        `${source.label} differs from the migrated database's ${source.name}: ${firstDifference(old.definition, now[0].definition)}`,
      );
    }
  }
  return { broken, problems, stale };
}

/**
 * A fresh in-memory PGlite with every migration of `drizzleDir` applied by the runner that
 * deploys, `npm start` and the tests use (lib/db/migrate.ts), so the check sees what they do.
 */
async function migratedPglite(
  drizzleDir = DRIZZLE_DIR,
): Promise<{ db: Database; close(): Promise<void> }> {
  const [{ PGlite }, { drizzle }] = await Promise.all([
    import("@electric-sql/pglite"),
    import("drizzle-orm/pglite"),
  ]);
  const client = await PGlite.create("memory://");
  const db = drizzle({ client, schema });
  try {
    await applyMigrations(db, { migrationsFolder: drizzleDir });
  } catch (error) {
    await client.close();
    throw error;
  }
  return { db, close: () => client.close() };
}

/** Both halves of the check on a fresh in-memory database; empty when all agree. */
async function checkSqlSources(drizzleDir = DRIZZLE_DIR): Promise<Problem[]> {
  const sources = await readSqlSources(drizzleDir);
  const textual = sourceProblems(sources, await readMigratedCopies(drizzleDir));
  const database = await migratedPglite(drizzleDir);
  try {
    const { broken, problems } = await compareWithDatabase(database.db, sources);
    return [...textual, ...broken, ...problems];
  } finally {
    await database.close();
  }
}

/**
 * The text of a generated migration. First the drops a file's own statement needs (a function
 * whose signature changed, a trigger that moved to another table); then each changed file
 * verbatim, functions before the triggers that may execute them; last the drops of objects
 * whose file is gone, once the files no longer use them, triggers before their functions.
 */
function migrationText(
  stale: readonly DatabaseObject[],
  changed: readonly SqlSource[],
  sources: readonly SqlSource[],
): string {
  const header =
    "-- Generated by `npm run db:functions` from drizzle/functions/ and drizzle/triggers/, where\n" +
    "-- each function's and trigger's current definition lives: edit those files, not this one.\n" +
    "-- npm run check fails when a copy below differs from its file.\n\n";
  const filed = (object: DatabaseObject) => sources.some(same(object));
  const drop = (object: DatabaseObject) => `${dropStatement(object)};\n`;
  const statements = [
    ...inDropOrder(stale.filter(filed)).map(drop),
    ...inRunOrder(changed).map((source) => copyStart(source) + source.text + copyEnd(source)),
    ...inDropOrder(stale.filter((object) => !filed(object))).map(drop),
  ];
  return header + statements.join("--> statement-breakpoint\n");
}

const USAGE = `Usage:
  npm run db:functions -- --name=<what_changed>   generate a migration from drizzle/functions
                                                  and drizzle/triggers
  npm run check:functions                         check files, migrations and database agree`;

/**
 * Generates the migration that brings a migrated database to the files, through
 * `drizzle-kit generate --custom` (which records it in the journal and snapshots), then
 * checks the result on a fresh database. Returns the migration's tag, or null when nothing
 * changed.
 */
async function generate(name: string): Promise<string | null> {
  const sources = await readSqlSources();
  const broken = sources.map(malformed).filter((message) => message !== null);
  if (broken.length > 0) throw new Error(broken.join("\n"));

  const copies = await readMigratedCopies();
  const database = await migratedPglite();
  let comparison: DatabaseComparison;
  try {
    comparison = await compareWithDatabase(database.db, sources);
  } finally {
    await database.close();
  }
  if (comparison.broken.length > 0) {
    throw new Error(comparison.broken.map((p) => p.message).join("\n"));
  }

  const differing = [...sourceProblems(sources, copies), ...comparison.problems];
  const changed = sources.filter((source) => differing.some(same(source)));
  if (changed.length === 0 && comparison.stale.length === 0) return null;

  const before = await readJournal(DRIZZLE_DIR);
  const drizzleKit = fileURLToPath(new URL("../node_modules/.bin/drizzle-kit", import.meta.url));
  await promisify(execFile)(drizzleKit, ["generate", "--custom", `--name=${name}`], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
  const entries = (await readJournal(DRIZZLE_DIR)).entries;
  const entry = entries.at(-1);
  const previous = before.entries.at(-1);
  if (!entry || entries.length !== before.entries.length + 1) {
    throw new Error("drizzle-kit generate --custom added no journal entry");
  }
  await writeFile(
    join(DRIZZLE_DIR, `${entry.tag}.sql`),
    migrationText(comparison.stale, changed, sources),
  );
  // drizzle's migrator applies only entries newer than the last one a database ran.
  if (previous && entry.when <= previous.when) {
    throw new Error(
      `drizzle/${entry.tag}.sql is dated before drizzle/${previous.tag}.sql (journal "when"); deployed databases would skip it`,
    );
  }
  const problems = await checkSqlSources();
  if (problems.length > 0) {
    throw new Error(
      `drizzle/${entry.tag}.sql does not bring a fresh database to the files:\n${problems.map((p) => p.message).join("\n")}`,
    );
  }
  return entry.tag;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command] = positionals;
  if (command === "check" && positionals.length === 1) {
    const problems = await checkSqlSources();
    for (const problem of problems) console.error(`✗ ${problem.message}`);
    if (problems.length > 0) return 1;
    const sources = await readSqlSources();
    const count = (kind: SqlKind, word: string) => {
      const n = sources.filter((source) => source.kind === kind).length;
      return `${n} ${word}${n === 1 ? "" : "s"}`;
    };
    console.log(
      `✓ ${count("function", "SQL function")} and ${count("trigger", "trigger")}: each file matches its migration and the migrated database`,
    );
    return 0;
  }
  if (command === "generate" && positionals.length === 1) {
    if (!values.name || !/^[a-z0-9_]+$/.test(values.name)) {
      console.error(`--name=<what_changed> is required, in lower_snake_case.\n${USAGE}`);
      return 1;
    }
    const tag = await generate(values.name);
    console.log(
      tag
        ? `Generated drizzle/${tag}.sql; commit it with the function and trigger files it copies.`
        : "Every function and trigger file matches its migration and the migrated database: nothing to generate.",
    );
    return 0;
  }
  console.error(USAGE);
  return 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  });
}
