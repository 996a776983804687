/**
 * Where a document lists what the code has, the list and the code agree, so that neither
 * drifts: the README's variables (lib/config.ts, scripts/server-config.ts) and npm commands
 * (package.json), docs/architecture.md's SQL functions and triggers (drizzle/functions/,
 * drizzle/triggers/) and docs/privacy.md's tables (lib/db/schema.ts). Each failure names what
 * is missing, and where.
 */
import { readdir, readFile } from "node:fs/promises";
import { getTableName, is } from "drizzle-orm";
import { PgTable } from "drizzle-orm/pg-core";
import { describe, expect, it } from "vitest";
import { EnvSchema } from "../lib/config.js";
import * as schema from "../lib/db/schema.js";
import { ServerEnvSchema } from "../scripts/server-config.js";

const ROOT = new URL("../", import.meta.url);
const read = (path: string) => readFile(new URL(path, ROOT), "utf8");

/** The first cells of the first table under `heading` (a whole heading line) in `markdown`. */
function firstColumn(markdown: string, heading: string): string[] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const rows: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("#")) break;
    if (line.startsWith("|")) rows.push(line.split(/(?<!\\)\|/)[1]?.trim() ?? "");
    else if (rows.length > 0) break;
  }
  // The header row and the |---| row.
  return rows.slice(2);
}

/** Each `code span` of `cells`. */
const codeSpans = (cells: readonly string[]) =>
  cells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? ""));

/** "`name` (where it is) is missing from <where>" for each of `names` not in `listed`. */
const missing = (names: Iterable<string>, listed: ReadonlySet<string>, where: string) =>
  [...names].filter((name) => !listed.has(name)).map((name) => `${name}: missing from ${where}`);

describe("the documents' lists", () => {
  it("name in the README's configuration table every variable the code reads, and no other", async () => {
    const readme = await read("README.md");
    const documented = new Set(codeSpans(firstColumn(readme, "## Configuration")));
    const read_ = new Map([
      ...Object.keys(EnvSchema.entries).map((name): [string, string] => [name, "lib/config.ts"]),
      ...Object.keys(ServerEnvSchema.entries).map((name): [string, string] => [
        name,
        "scripts/server-config.ts",
      ]),
    ]);
    // What only the tests read, which the table lists for whoever runs them.
    const support = await read("test/support/databases.ts");
    const testOnly = [...documented].filter((name) => !read_.has(name));
    expect([
      ...missing(read_.keys(), documented, "README.md's Configuration table"),
      ...testOnly
        .filter((name) => !support.includes(`process.env.${name}`))
        .map((name) => `${name}: in README.md's Configuration table, but nothing reads it`),
    ]).toEqual([]);
  });

  it("name in the README's command table every npm script, and no other", async () => {
    const readme = await read("README.md");
    const { scripts } = JSON.parse(await read("package.json")) as {
      scripts: Record<string, string>;
    };
    const commands = codeSpans(firstColumn(readme, "## Running it")).flatMap((span) =>
      [...span.matchAll(/\bnpm (?:run ([\w:-]+)|(start|test))\b/g)].map(
        (match) => match[1] ?? match[2] ?? "",
      ),
    );
    const documented = new Set(commands);
    const scriptNames = new Set(Object.keys(scripts));
    expect([
      ...missing(scriptNames, documented, "README.md's command table (## Running it)"),
      ...[...documented]
        .filter((name) => !scriptNames.has(name))
        .map((name) => `npm run ${name}: in README.md's command table, but not in package.json`),
    ]).toEqual([]);
  });

  it("name in docs/architecture.md's SQL table every function and trigger file, and no other", async () => {
    const architecture = await read("docs/architecture.md");
    const rows = firstColumn(architecture, "## Where the SQL lives");
    const linked = rows.flatMap((cell) =>
      [...cell.matchAll(/\(\.\.\/(drizzle\/(?:functions|triggers)\/\w+\.sql)\)/g)].map(
        (match) => match[1] ?? "",
      ),
    );
    const files = [
      ...(await readdir(new URL("drizzle/functions/", ROOT))).map((f) => `drizzle/functions/${f}`),
      ...(await readdir(new URL("drizzle/triggers/", ROOT))).map((f) => `drizzle/triggers/${f}`),
    ].filter((path) => path.endsWith(".sql"));
    const documented = new Set(linked);
    expect([
      ...missing(files, documented, "docs/architecture.md's table (## Where the SQL lives)"),
      ...linked
        .filter((path) => !files.includes(path))
        .map((path) => `${path}: in docs/architecture.md's table, but no such file`),
      ...linked
        .filter((path, index) => linked.indexOf(path) !== index)
        .map((path) => `${path}: listed twice in docs/architecture.md's table`),
    ]).toEqual([]);
  });

  it("name in docs/privacy.md's stored data every table of the schema, and no other", async () => {
    const privacy = await read("docs/privacy.md");
    const documented = new Set(codeSpans(firstColumn(privacy, "## What is stored")));
    const tables = Object.values(schema)
      .filter((value) => is(value, PgTable))
      .map((table) => getTableName(table as PgTable));
    expect([
      ...missing(tables, documented, "docs/privacy.md's table (## What is stored)"),
      ...[...documented]
        .filter((name) => !tables.includes(name))
        .map((name) => `${name}: in docs/privacy.md's table, but not in lib/db/schema.ts`),
    ]).toEqual([]);
  });
});
