/**
 * Fails when package-lock.json no longer matches package.json: `npm ci` installs from the
 * lock, and Vercel's build runs `npm install`, which rewrites a drifted lock in the build and
 * deploys what nobody tested. npm ci itself only checks the dependency ranges; this also
 * checks the fields it ignores, such as `engines`, which picks Vercel's Node.js runtime.
 */
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";

const FIELDS = [
  "name",
  "version",
  "engines",
  "dependencies",
  "devDependencies",
  "optionalDependencies",
];

const manifest = JSON.parse(readFileSync("package.json", "utf8")) as Record<string, unknown>;
const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
  packages?: Record<string, Record<string, unknown>>;
};
const root = lock.packages?.[""] ?? {};
const drifted = FIELDS.filter((field) => !isDeepStrictEqual(manifest[field], root[field]));
if (drifted.length > 0) {
  console.error(
    `package-lock.json is out of step with package.json (${drifted.join(", ")}): run \`npm install\` and commit the lockfile.`,
  );
  process.exit(1);
}
console.log("package-lock.json matches package.json.");
