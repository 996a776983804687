/**
 * Every environment variable the service reads, validated in one place. Read lazily (on the
 * first request, not on import) so tests and scripts can set the environment first.
 */
import * as v from "valibot";
import { type Guardrails, guardrailsFrom } from "./guardrails.js";

const millis = (fallback: number) =>
  v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(0)),
    String(fallback),
  );

/** Host names that never leave this machine. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

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
        return protocol === "wss:" || LOOPBACK.has(hostname);
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
   * Comma-separated API keys (at least 16 characters each). Set: every request needs
   * `Authorization: Bearer <one of them>`. Unset: no access control.
   */
  API_KEYS: v.optional(
    v.pipe(
      v.string(),
      v.transform((list) =>
        list
          .split(",")
          .map((key) => key.trim())
          .filter(Boolean),
      ),
      v.array(v.pipe(v.string(), v.minLength(16, "each API key needs at least 16 characters"))),
    ),
  ),
  /** Comma-separated emails, or /regex/ patterns, that are stored but never link customers. */
  JUNK_EMAILS: v.optional(v.string()),
  /** Comma-separated phone numbers, or /regex/ patterns, stored but never linking customers. */
  JUNK_PHONE_NUMBERS: v.optional(v.string()),
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

/** Validates the environment; throws an Error naming each bad variable. */
export function readConfig(env: Record<string, string | undefined> = process.env): Config {
  // `NAME=` in a .env file means "not set", not "set to nothing".
  const given = Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim()));
  const result = v.safeParse(EnvSchema, given);
  if (result.success) return result.output;
  const problems = result.issues.map((issue) => `${v.getDotPath(issue)}: ${issue.message}`);
  throw new Error(`Invalid environment: ${problems.join("; ")}`);
}

let cached: Config | undefined;

/** The process's configuration, read and validated on first use. */
export function getConfig(): Config {
  cached ??= readConfig();
  return cached;
}

let guardrails: Guardrails | undefined;

/** The process's over-merge guardrails, read from the configuration on first use. */
export function getGuardrails(): Guardrails {
  guardrails ??= guardrailsFrom(getConfig());
  return guardrails;
}
