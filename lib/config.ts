/**
 * Every environment variable the service reads, validated in one place. Read lazily (on the
 * first request, not on import) so tests and scripts can set the environment first. A bad
 * value is a ConfigError naming the variable, never quoting a secret.
 *
 * This module depends on nothing else of the service but its errors: the guardrails and the
 * server derive their settings from what it validates.
 */
import { isIP } from "node:net";
import * as v from "valibot";
import { ConfigError } from "./errors.js";

const millis = (fallback: number) =>
  v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(0)),
    String(fallback),
  );

/** Items of a comma-separated list, trimmed, without the empty ones. */
const listItems = (list: string) =>
  list
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

/** Visible ASCII only: what an `Authorization: Bearer` header can carry as one token. */
const API_KEY = /^[!-~]+$/;

/**
 * A set variable that names no key would silently turn access control off, so it is an
 * error; so is a key no request could present. Messages never quote a key.
 */
const ApiKeysSchema = v.pipe(
  v.string(),
  v.transform(listItems),
  v.array(
    v.pipe(
      v.string(),
      v.regex(
        API_KEY,
        "a key has a space or a non-printable character inside (keys are separated by commas)",
      ),
      v.minLength(16, "each API key needs at least 16 characters"),
    ),
  ),
  v.minLength(1, "names no key; list keys, or unset it to turn access control off"),
);

/** The entries of a JUNK_EMAILS or JUNK_PHONE_NUMBERS list, split but not yet normalized. */
export interface JunkList {
  /** Exact values, as written (the guardrails normalize them like requests). */
  values: string[];
  /** PostgreSQL regular expressions, without their slashes. */
  patterns: string[];
}

/** The "/" that closes a pattern: the first one followed by a comma or the end. */
const PATTERN_END = /\/\s*(?:,|$)/;

/**
 * Splits a junk list. Entries are separated by commas; a `/pattern/` runs from its "/" to
 * the first "/" that is followed by a comma or the end, so a pattern may contain commas
 * (`/^0{6,}$/`). Inside a pattern, write a slash that a comma follows as `[/]`.
 * @returns the entries, or the reason the list is malformed.
 */
export function splitJunkList(list: string): JunkList | string {
  const values: string[] = [];
  const patterns: string[] = [];
  let rest = list.trimStart();
  while (rest !== "") {
    if (rest.startsWith("/")) {
      const end = PATTERN_END.exec(rest.slice(1));
      if (!end) return `the pattern ${rest} has no closing "/" before a comma or the end`;
      const pattern = rest.slice(1, 1 + end.index);
      if (pattern === "") return "// is an empty pattern";
      patterns.push(pattern);
      rest = rest.slice(1 + end.index + end[0].length);
    } else {
      const comma = rest.indexOf(",");
      const value = (comma === -1 ? rest : rest.slice(0, comma)).trim();
      if (value !== "") values.push(value);
      rest = comma === -1 ? "" : rest.slice(comma + 1);
    }
    rest = rest.trimStart();
  }
  return { values, patterns };
}

const JunkListSchema = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const split = splitJunkList(dataset.value);
    if (typeof split === "string") {
      addIssue({ message: split });
      return NEVER;
    }
    return split;
  }),
);

const EnvSchema = v.object({
  /** Postgres connection string. Unset: the embedded PGlite database. */
  DATABASE_URL: v.optional(v.pipe(v.string(), v.trim(), v.url("DATABASE_URL must be a URL"))),
  /**
   * A direct (not pooled) URL of the same database, for migrations: Neon's integration sets
   * it. Only the migration scripts read it, and only when DATABASE_URL is not given to them
   * on the command line (see scripts/migrate.ts).
   */
  DATABASE_URL_UNPOOLED: v.optional(
    v.pipe(v.string(), v.trim(), v.url("DATABASE_URL_UNPOOLED must be a URL")),
  ),
  /**
   * A WebSocket proxy (ws:// or wss://) that routes the Neon driver to a server that is not
   * Neon's, as Neon's own proxy does for Neon hosts. ws:// sends in clear, so only loopback.
   */
  NEON_WS_PROXY: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.url("NEON_WS_PROXY must be a URL"),
      v.check(
        (value) => /^wss?:$/.test(new URL(value).protocol),
        "NEON_WS_PROXY must start with ws:// or wss://",
      ),
      v.check((value) => {
        const { protocol, hostname } = new URL(value);
        return protocol === "wss:" || LOOPBACK_HOSTS.includes(hostname);
      }, "NEON_WS_PROXY with ws:// (unencrypted) must be a loopback address; use wss:// elsewhere"),
    ),
  ),
  /** Set by Vercel: production, preview or development. Decides what a build may migrate. */
  VERCEL_ENV: v.optional(v.picklist(["production", "preview", "development"])),
  /** Where the embedded database keeps its files; `memory://` keeps nothing. */
  PGLITE_DIR: v.optional(v.pipe(v.string(), v.trim(), v.nonEmpty()), ".data"),
  /** How long to wait for another process that has the embedded database open. */
  PGLITE_LOCK_WAIT_MS: millis(15_000),
  /** Set by Vercel on every deployment: the embedded database is never used there. */
  VERCEL: v.optional(v.string()),
  /** Connections per function instance. */
  DB_POOL_MAX: v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(1)),
    "5",
  ),
  /** Give up connecting after this long (503). */
  DB_CONNECT_TIMEOUT_MS: millis(5_000),
  /** Give up on a query after this long (503). */
  DB_QUERY_TIMEOUT_MS: millis(8_000),
  /** Longest wait for another request's lock inside the database before a 503; 0 = forever. */
  DB_LOCK_TIMEOUT_MS: millis(5_000),
  /**
   * Comma-separated API keys (at least 16 visible characters each). Set: every request needs
   * `Authorization: Bearer <one of them>`. Unset: no access control.
   */
  API_KEYS: v.optional(ApiKeysSchema),
  /** Emails, or /regex/ patterns, that are stored but never link customers (splitJunkList). */
  JUNK_EMAILS: v.optional(JunkListSchema),
  /** Phone numbers, or /regex/ patterns, stored but never linking customers. */
  JUNK_PHONE_NUMBERS: v.optional(JunkListSchema),
  /**
   * The cap: refuse (409) any request that reaches a customer of more than this many
   * contacts, or would grow one past it. It also bounds each request's database work.
   */
  MAX_CONTACTS_PER_CUSTOMER: v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(2), v.maxValue(100_000)),
    "1000",
  ),
});

export type Config = v.InferOutput<typeof EnvSchema>;

/** The Host names a server answers to unless ALLOWED_HOSTS says otherwise. */
export const LOOPBACK_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];

/** A host name as URLs normalize it (lower case, IPv6 in brackets), or undefined. */
function normalizedHost(entry: string): string | undefined {
  if (!URL.canParse(`http://${entry}`)) return undefined;
  const url = new URL(`http://${entry}`);
  // Anything but a bare host (a port, a path, credentials) makes href differ.
  return url.href === `http://${url.hostname}/` ? url.hostname : undefined;
}

/** A host name or IP address to listen on. */
const LISTEN_HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i;

/** Settings only `npm start` reads; Vercel never does, so they never fail a deployment. */
const ServerEnvSchema = v.object({
  /** Port of `npm start`; 0 takes any free port (the "listening" log line says which). */
  PORT: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d{1,5}$/, "must be a port number from 0 to 65535"),
      v.transform(Number),
      v.maxValue(65_535, "must be a port number from 0 to 65535"),
    ),
    "3000",
  ),
  /** Interface to listen on: only this machine by default. */
  HOST: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.check(
        (host) => isIP(host) !== 0 || LISTEN_HOST.test(host),
        "must be an IP address or a host name, such as 127.0.0.1 or 0.0.0.0",
      ),
    ),
    "127.0.0.1",
  ),
  /**
   * Comma-separated Host names the server answers to (any port); `*` answers any. Others get
   * 421, which keeps a DNS-rebinding page from reaching a server on this machine.
   */
  ALLOWED_HOSTS: v.optional(
    v.pipe(
      v.string(),
      v.transform(listItems),
      v.minLength(1, "names no host; list host names, or * for any"),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const hosts: string[] = [];
        for (const entry of dataset.value) {
          const host = entry === "*" ? "*" : normalizedHost(entry);
          if (host === undefined) {
            addIssue({
              message: `"${entry}" is not a host name (no scheme, port or path; IPv6 in brackets)`,
            });
            return NEVER;
          }
          hosts.push(host);
        }
        return hosts;
      }),
    ),
    LOOPBACK_HOSTS.join(","),
  ),
});

export type ServerConfig = v.InferOutput<typeof ServerEnvSchema>;

/** Validates `env` against `schema`; a ConfigError names each bad variable. */
function parseEnv<Schema extends v.GenericSchema>(
  schema: Schema,
  env: Record<string, string | undefined>,
): v.InferOutput<Schema> {
  // `NAME=` in a .env file means "not set", not "set to nothing".
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim()));
  const result = v.safeParse(schema, given);
  if (result.success) return result.output;
  // Only the variable's name: an item's index or value could point at a secret.
  const problems = result.issues.map((issue) => `${issue.path?.[0]?.key}: ${issue.message}`);
  throw new ConfigError(`Invalid environment: ${problems.join("; ")}`);
}

/** Validates the service's settings; throws a ConfigError naming each bad variable. */
export function readConfig(env: Record<string, string | undefined> = process.env): Config {
  return parseEnv(EnvSchema, env);
}

/** Validates the settings of `npm start` (PORT, HOST, ALLOWED_HOSTS). */
export function readServerConfig(
  env: Record<string, string | undefined> = process.env,
): ServerConfig {
  return parseEnv(ServerEnvSchema, env);
}

let cached: Config | undefined;

/** The process's configuration, read and validated on first use. */
export function getConfig(): Config {
  cached ??= readConfig();
  return cached;
}
