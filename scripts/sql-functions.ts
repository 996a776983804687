/**
 * SQL functions as source files. Each function of the database has one file,
 * drizzle/functions/<name>.sql, holding its current `CREATE OR REPLACE FUNCTION` text with the
 * design notes beside the code; the migrations that install them are generated from those
 * files, so a change reads as the diff of one file plus a generated migration. (Migrations
 * 0000–0006 predate this and stay as deployed databases ran them.)
 *
 *   npm run db:functions -- --name=<what>   a drizzle-kit custom migration that installs every
 *                                           function whose file changed, and drops the ones
 *                                           whose file is gone (renamed) or whose signature
 *                                           changed
 *   npm run check:functions                 fails when a file differs from its copy in the
 *                                           latest migration carrying one, or when a freshly
 *                                           migrated database's functions differ from the files
 *
 * PostgreSQL itself does the comparing: every file is run against a freshly migrated
 * database, and each function's `pg_get_functiondef` must be the same before and after, so
 * layout PostgreSQL normalizes never counts as drift while any change to a signature, a
 * setting or a body does.
 */
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs, promisify } from "node:util";
import { sql } from "drizzle-orm";
import { TransactionRollbackError } from "drizzle-orm/errors";
import type { Database } from "../lib/db/client.js";
import { applyMigrations } from "../lib/db/migrate.js";
import { queryRows } from "../lib/db/query.js";
import * as schema from "../lib/db/schema.js";
import { databaseMessage, sqlState } from "../lib/errors.js";

/** drizzle-kit's output folder: the migrations, their journal, and functions/. */
const DRIZZLE_DIR = fileURLToPath(new URL("../drizzle", import.meta.url));

/** One function's source file. */
export interface FunctionSource {
  /** The function's name, which is the file's name without `.sql`. */
  name: string;
  /** The file as migrations and messages name it: `drizzle/functions/<name>.sql`. */
  label: string;
  text: string;
}

/** Something that disagrees, and the function it concerns. */
export interface Problem {
  name: string;
  message: string;
}

/** A function as the database has it. */
interface DatabaseFunction {
  name: string;
  /** Its identity arguments, as `DROP FUNCTION name(<args>)` takes them. */
  args: string;
  definition: string;
}

const labelOf = (name: string) => `drizzle/functions/${name}.sql`;

/** Every file in drizzle/functions, by name. */
export async function readFunctionSources(drizzleDir = DRIZZLE_DIR): Promise<FunctionSource[]> {
  const folder = join(drizzleDir, "functions");
  const files = (await readdir(folder)).filter((file) => file.endsWith(".sql")).sort();
  return Promise.all(
    files.map(async (file) => {
      const name = file.slice(0, -".sql".length);
      return { name, label: labelOf(name), text: await readFile(join(folder, file), "utf8") };
    }),
  );
}

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

async function readJournal(drizzleDir: string): Promise<Journal> {
  return JSON.parse(await readFile(join(drizzleDir, "meta", "_journal.json"), "utf8")) as Journal;
}

// A generated migration carries each file verbatim between these two lines.
const copyStart = (name: string) => `-- begin copy of ${labelOf(name)}\n`;
const copyEnd = (name: string) => `-- end copy of ${labelOf(name)}\n`;
const COPY =
  /^-- begin copy of drizzle\/functions\/(\w+)\.sql\n([\s\S]*?)^-- end copy of drizzle\/functions\/\1\.sql$/gm;

/** Where a function's file was last copied into a migration, and the copy. */
export interface MigratedCopy {
  migration: string;
  text: string;
}

/** The copy of each function file in the latest migration that carries one, by name. */
export async function readMigratedCopies(
  drizzleDir = DRIZZLE_DIR,
): Promise<Map<string, MigratedCopy>> {
  const copies = new Map<string, MigratedCopy>();
  for (const { tag } of (await readJournal(drizzleDir)).entries) {
    const text = await readFile(join(drizzleDir, `${tag}.sql`), "utf8");
    for (const [, name, copy] of text.matchAll(COPY)) {
      if (name !== undefined && copy !== undefined)
        copies.set(name, { migration: tag, text: copy });
    }
  }
  return copies;
}

/** What makes a file unusable as a source, whatever the migrations say; null when nothing. */
function malformed(source: FunctionSource): string | null {
  const code = source.text.replace(/--[^\n]*/g, "");
  const declared = [...code.matchAll(/\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([\w."]+)/gi)];
  const names = declared.map((match) => match[1]);
  if (names.length !== 1 || names[0] !== source.name) {
    return `${source.label} must create exactly one function, named ${source.name} and not schema-qualified (it creates: ${names.join(", ") || "none"})`;
  }
  if (!/^\s*CREATE\s+OR\s+REPLACE\s+FUNCTION\b/i.test(code)) {
    return `${source.label} must use CREATE OR REPLACE FUNCTION, so its migration can replace the function in place`;
  }
  if (source.text.includes("--> statement-breakpoint")) {
    return `${source.label} must not contain "--> statement-breakpoint": drizzle would split the function there`;
  }
  return null;
}

const GENERATE_HINT = "run npm run db:functions -- --name=<what_changed>";

/**
 * The text half of the check: each file must be well formed, and equal to its copy in the
 * latest migration that carries one, or the database would not have what the file says.
 */
export function sourceProblems(
  sources: readonly FunctionSource[],
  copies: ReadonlyMap<string, MigratedCopy>,
): Problem[] {
  const problems: Problem[] = [];
  for (const source of sources) {
    const copy = copies.get(source.name);
    const message =
      malformed(source) ??
      (copy === undefined
        ? `${source.label} is in no migration yet: ${GENERATE_HINT}`
        : copy.text !== source.text
          ? `${source.label} changed since its copy in drizzle/${copy.migration}.sql: ${GENERATE_HINT}`
          : null);
    if (message) problems.push({ name: source.name, message });
  }
  return problems;
}

const LIST_FUNCTIONS = sql`
  select p.proname as name,
         pg_get_function_identity_arguments(p.oid) as args,
         case when p.prokind = 'a' then 'aggregate' else pg_get_functiondef(p.oid) end as definition
    from pg_proc p
   where p.pronamespace = 'public'::regnamespace
     and not exists (select 1 from pg_depend d
                      where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
   order by 1, 2`;

/** The first line where two definitions part, quoted, for a message. */
function firstDifference(database: string, file: string): string {
  const a = database.split("\n");
  const b = file.split("\n");
  const line = a.findIndex((text, i) => text !== b[i]);
  const at = line === -1 ? a.length : line;
  return `line ${at + 1} of the definition is ${JSON.stringify(a[at] ?? "(end)")} in the database, ${JSON.stringify(b[at] ?? "(end)")} in the file`;
}

/** The database half of the check, and what a migration would have to drop to fix it. */
export interface DatabaseComparison {
  /** Files that do not run at all: no migration can install them. */
  broken: Problem[];
  /** Functions that differ between the files and the database. */
  problems: Problem[];
  /** Functions a migration must drop: no file has them, or their file changed the signature. */
  stale: DatabaseFunction[];
}

/**
 * Compares a migrated database's functions in the public schema with the files: every
 * function must have exactly one file and every file exactly one function, with the same
 * definition. Runs every file inside a transaction it rolls back, so the database is left as
 * it was.
 */
export function compareWithDatabase(
  db: Database,
  sources: readonly FunctionSource[],
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
  sources: readonly FunctionSource[],
): Promise<DatabaseComparison> {
  const before = await queryRows<DatabaseFunction>(tx, LIST_FUNCTIONS);
  const broken: Problem[] = [];
  const problems: Problem[] = [];
  const stale: DatabaseFunction[] = [];
  // Each file in a savepoint of its own, so one that fails leaves the others comparable.
  const run = (...statements: string[]) =>
    tx.transaction(async (savepoint) => {
      for (const statement of statements) await savepoint.execute(sql.raw(statement));
    });
  for (const source of sources) {
    const existing = before.find((f) => f.name === source.name);
    try {
      await run(source.text).catch(async (error: unknown) => {
        // 42P13: the file changes the return type, a parameter name or a default, which
        // CREATE OR REPLACE refuses: the migration has to drop the old function first.
        if (!existing || sqlState(error) !== "42P13") throw error;
        await run(`DROP FUNCTION ${source.name}(${existing.args})`, source.text);
        stale.push(existing);
      });
    } catch (error) {
      broken.push({
        name: source.name,
        message: `${source.label} fails: ${databaseMessage(error)}`,
      });
    }
  }
  const after = await queryRows<DatabaseFunction>(tx, LIST_FUNCTIONS);
  const named = new Set(sources.map((source) => source.name));

  for (const orphan of before.filter((f) => !named.has(f.name))) {
    stale.push(orphan);
    problems.push({
      name: orphan.name,
      message: `${orphan.name}(${orphan.args}) is in the migrated database but has no file ${labelOf(orphan.name)}`,
    });
  }
  for (const source of sources) {
    if (broken.some((problem) => problem.name === source.name)) continue;
    const was = before.filter((f) => f.name === source.name);
    const now = after.filter((f) => f.name === source.name);
    const add = (message: string) => problems.push({ name: source.name, message });
    if (was.length > 1) {
      add(
        `the migrated database has ${was.length} functions named ${source.name}: give each a name, and a file, of its own`,
      );
    } else if (stale.some((f) => f.name === source.name)) {
      add(
        `${source.label} changes the signature of ${source.name}(${was[0]?.args}): ${GENERATE_HINT}`,
      );
    } else if (was[0] === undefined) {
      add(`${source.label} is not in the migrated database: ${GENERATE_HINT}`);
    } else if (now.length > 1) {
      const added = now.find((f) => f.args !== was[0]?.args);
      stale.push(was[0]);
      add(
        `${source.label} declares ${source.name}(${added?.args}) but the migrated database has ${source.name}(${was[0].args}): ${GENERATE_HINT}`,
      );
    } else if (now[0] && now[0].definition !== was[0].definition) {
      add(
        `${source.label} differs from the migrated database's ${source.name}: ${firstDifference(was[0].definition, now[0].definition)}`,
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
async function checkFunctionSources(drizzleDir = DRIZZLE_DIR): Promise<Problem[]> {
  const sources = await readFunctionSources(drizzleDir);
  const textual = sourceProblems(sources, await readMigratedCopies(drizzleDir));
  const database = await migratedPglite(drizzleDir);
  try {
    const { broken, problems } = await compareWithDatabase(database.db, sources);
    return [...textual, ...broken, ...problems];
  } finally {
    await database.close();
  }
}

/** The text of a generated migration: the drops first, then each changed file verbatim. */
function migrationText(
  drops: readonly { name: string; args: string }[],
  changed: readonly FunctionSource[],
): string {
  const header =
    "-- Generated by `npm run db:functions` from drizzle/functions/, where each function's current\n" +
    "-- definition lives: edit those files, not this one. npm run check fails when a copy below\n" +
    "-- differs from its file.\n\n";
  const statements = [
    ...drops.map((f) => `DROP FUNCTION ${f.name}(${f.args});\n`),
    ...changed.map((source) => copyStart(source.name) + source.text + copyEnd(source.name)),
  ];
  return header + statements.join("--> statement-breakpoint\n");
}

const USAGE = `Usage:
  npm run db:functions -- --name=<what_changed>   generate a migration from drizzle/functions
  npm run check:functions                         check files, migrations and database agree`;

/**
 * Generates the migration that brings a migrated database to the files, through
 * `drizzle-kit generate --custom` (which records it in the journal and snapshots), then
 * checks the result on a fresh database. Returns the migration's tag, or null when nothing
 * changed.
 */
async function generate(name: string): Promise<string | null> {
  const sources = await readFunctionSources();
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

  const differing = new Set([
    ...sourceProblems(sources, copies).map((p) => p.name),
    ...comparison.problems.map((p) => p.name),
  ]);
  const changed = sources.filter((source) => differing.has(source.name));
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
  await writeFile(join(DRIZZLE_DIR, `${entry.tag}.sql`), migrationText(comparison.stale, changed));
  // drizzle's migrator applies only entries newer than the last one a database ran.
  if (previous && entry.when <= previous.when) {
    throw new Error(
      `drizzle/${entry.tag}.sql is dated before drizzle/${previous.tag}.sql (journal "when"); deployed databases would skip it`,
    );
  }
  const problems = await checkFunctionSources();
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
    options: { name: { type: "string" } },
  });
  const [command] = positionals;
  if (command === "check" && positionals.length === 1) {
    const problems = await checkFunctionSources();
    for (const problem of problems) console.error(`✗ ${problem.message}`);
    if (problems.length > 0) return 1;
    const count = (await readFunctionSources()).length;
    console.log(
      `✓ ${count} SQL functions: each file matches its migration and the migrated database`,
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
        ? `Generated drizzle/${tag}.sql; commit it with the function files it copies.`
        : "Every function file matches its migration and the migrated database: nothing to generate.",
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
