/**
 * Every environment variable the service reads, validated in one place. Read lazily (on the
 * first request, not on import) so tests and scripts can set the environment first. A bad
 * value is a ConfigError naming the variable, never quoting a secret.
 *
 * Some rules span several variables, and they are checked here too, so that every path that
 * reads the configuration enforces them: the deploy build (scripts/migrate.ts fails before
 * migrating), the function (every request answers 500 misconfigured) and `npm start`.
 * - A deployment (the deploy build, the function it bundles, or any process Vercel's
 *   VERCEL and VERCEL_ENV call one) is closed unless opened: it needs API_KEYS, or
 *   ALLOW_PUBLIC_ACCESS=true to serve anyone on purpose; FEED_API_KEYS, which read the change
 *   feed only, do not count. The API hands a customer's every email and phone number to
 *   whoever knows one of them, and a forgotten variable must not publish that.
 * - A Vercel deployment talks to PostgreSQL over TLS: a node-postgres URL to another machine
 *   needs an encrypting sslmode, unless ALLOW_PLAINTEXT_DATABASE=true. The rule is
 *   lib/db/database-url.ts's, and runs on the parsed URL the drivers then connect with.
 *
 * The settings only `npm start` reads (PORT, HOST, ALLOWED_HOSTS, and its rule that a HOST
 * other machines reach needs API_KEYS) live with it, in scripts/server-config.ts, which builds
 * on parseEnv and the API_KEYS read here.
 *
 * Each database URL is parsed once, into the object every reader uses (lib/db/database-url.ts):
 * the TLS rule here, lib/db/client.ts's choice of driver, and the drivers themselves.
 */
import * as v from "valibot";
import { databaseUrlSchema, plaintextProblem } from "./db/database-url.js";
import { ConfigError } from "./errors.js";
import { LOOPBACK_HOSTS } from "./hosts.js";

const millis = (fallback: number) =>
  v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(0)),
    String(fallback),
  );

/** Items of a comma-separated list, trimmed, without the empty ones. */
export const listItems = (list: string) =>
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
  v.minLength(
    1,
    "names no key; list keys (to serve without keys on purpose, unset it and set ALLOW_PUBLIC_ACCESS=true)",
  ),
);

/**
 * A switch that weakens a protection: only the exact word `true` turns it on, so that `false`,
 * `0` or `no` can never be read as yes, nor silently as no.
 */
const optIn = (what: string) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.check(
        (value) => value === "true",
        `only "true" is accepted (it ${what}); unset it otherwise`,
      ),
      v.transform(() => true as const),
    ),
  );

/** A setting whose grammar belongs to the module that reads it: trimmed here, parsed there. */
const text = v.optional(v.pipe(v.string(), v.trim()));

/** Every variable the service reads, and its rules one by one (the README lists them all). */
export const EnvSchema = v.object({
  /** Postgres connection string. Unset: the embedded PGlite database. */
  DATABASE_URL: v.optional(databaseUrlSchema("DATABASE_URL")),
  /**
   * A direct (not pooled) URL of the same database, for migrations: Neon's integration sets
   * it. Only the migration scripts read it, and only when DATABASE_URL is not given to them
   * on the command line (see scripts/migrate.ts).
   */
  DATABASE_URL_UNPOOLED: v.optional(databaseUrlSchema("DATABASE_URL_UNPOOLED")),
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
        // Run even when v.url failed (valibot runs a pipe's checks on): leave that to v.url.
        (value) => !URL.canParse(value) || /^wss?:$/.test(new URL(value).protocol),
        "NEON_WS_PROXY must start with ws:// or wss://",
      ),
      v.check((value) => {
        if (!URL.canParse(value)) return true;
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
   * `Authorization: Bearer <one of them>`. Unset: no access control, which a Vercel deployment
   * refuses unless ALLOW_PUBLIC_ACCESS=true.
   */
  API_KEYS: v.optional(ApiKeysSchema),
  /**
   * Comma-separated keys, as API_KEYS, that read the change feed (GET /identify/changes) and
   * nothing else: least privilege for a system that mirrors ids. Set alone, it closes
   * POST /identify to every request.
   */
  FEED_API_KEYS: v.optional(ApiKeysSchema),
  /** `true`: a Vercel deployment, or `npm start` on a public interface, serves without keys. */
  ALLOW_PUBLIC_ACCESS: optIn("serves customers' personal data to anyone"),
  /** `true`: a Vercel deployment may reach a non-Neon PostgreSQL without TLS. */
  ALLOW_PLAINTEXT_DATABASE: optIn("lets the database connection travel unencrypted"),
  /**
   * Emails, or /regex/ patterns, that are stored but never link customers. lib/guardrails.ts
   * splits and checks the list (splitJunkList), and every path that links reads it there.
   */
  JUNK_EMAILS: text,
  /** Phone numbers, or /regex/ patterns, stored but never linking customers (as JUNK_EMAILS). */
  JUNK_PHONE_NUMBERS: text,
  /**
   * The cap: refuse (409) any request that reaches a customer of more than this many
   * contacts, or would grow one past it. It also bounds each request's database work.
   */
  MAX_CONTACTS_PER_CUSTOMER: v.optional(
    v.pipe(v.string(), v.trim(), v.toNumber(), v.integer(), v.minValue(2), v.maxValue(100_000)),
    "1000",
  ),
});

/** The validated settings, and whether they serve a deployment (readConfig's `deployment`). */
export type Config = v.InferOutput<typeof EnvSchema> & {
  /**
   * A deployment's build or function: closed unless opened, TLS to the database, never the
   * embedded database. Decided once, by readConfig.
   */
  readonly deployment: boolean;
};

/**
 * True in the function that scripts/build-function.ts bundles, which defines it at build
 * time: that bundle is only ever deployed (`vercel dev` runs api/ through its own builder,
 * and `npm start` through tsx), so it is a deployment whatever the environment says. A
 * project can stop exposing Vercel's system variables (VERCEL, VERCEL_ENV) to its builds and
 * functions, and a deployment told apart by them alone would then serve without keys.
 */
declare const IDENTIFY_DEPLOYED_BUILD: boolean | undefined;
const deployedBuild = typeof IDENTIFY_DEPLOYED_BUILD !== "undefined" && IDENTIFY_DEPLOYED_BUILD;

/**
 * Validates `env` against `schema`; a ConfigError names each bad variable. `npm start`
 * validates its own settings with it (scripts/server-config.ts).
 */
export function parseEnv<Schema extends v.GenericSchema>(
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

/** Throws the ConfigError for rules that span variables, in parseEnv's format, if any broke. */
export function refuse(problems: readonly string[]): void {
  if (problems.length > 0) throw new ConfigError(`Invalid environment: ${problems.join("; ")}`);
}

/**
 * True when Vercel's system variables say this is a deployment or its build: VERCEL is set,
 * and VERCEL_ENV is not `development` (`vercel dev`, a developer's machine). A build without
 * VERCEL_ENV counts: a `vercel build` run by hand, even with `--prod`, sets VERCEL=1 and no
 * VERCEL_ENV (measured with Vercel CLI 58.10.0), and scripts/migrate.ts builds it as a
 * preview. Vercel's own builds and functions set both, unless the project stops exposing
 * them: so the deploy build and the bundled function do not rely on this alone.
 */
export function isVercelDeployment(config: Pick<Config, "VERCEL" | "VERCEL_ENV">): boolean {
  return config.VERCEL !== undefined && config.VERCEL_ENV !== "development";
}

/** The rules a valid configuration still breaks by its combination (see the module comment). */
function crossFieldProblems(config: Config): string[] {
  const problems: string[] = [];
  const keyLists = (["API_KEYS", "FEED_API_KEYS"] as const).filter((name) => config[name]);
  if (config.ALLOW_PUBLIC_ACCESS && keyLists.length > 0) {
    const lists = keyLists.join(" and ");
    problems.push(
      `ALLOW_PUBLIC_ACCESS: set together with ${lists}, which contradicts it (one says every ` +
        "request needs a key, the other that none does): unset ALLOW_PUBLIC_ACCESS to require " +
        `the keys, or unset ${lists} to serve anyone`,
    );
  }
  if (!config.deployment) return problems;
  if (!config.API_KEYS && !config.ALLOW_PUBLIC_ACCESS) {
    const environment =
      config.VERCEL_ENV ?? (config.VERCEL ? "VERCEL set, no VERCEL_ENV" : "no VERCEL_ENV");
    problems.push(
      `API_KEYS: this Vercel deployment (${environment}) has ` +
        "no access control, and the API answers anyone who knows one email or phone number with " +
        "the customer's every email and phone number. Set API_KEYS in the project's environment " +
        "variables for this environment (clients send Authorization: Bearer <key>), or set " +
        "ALLOW_PUBLIC_ACCESS=true to serve anyone on purpose" +
        (config.FEED_API_KEYS ? " (FEED_API_KEYS opens the change feed only)" : ""),
    );
  }
  if (!config.ALLOW_PLAINTEXT_DATABASE) {
    for (const url of [config.DATABASE_URL, config.DATABASE_URL_UNPOOLED]) {
      const problem = url && plaintextProblem(url, config.NEON_WS_PROXY);
      if (problem) problems.push(problem);
    }
  }
  return problems;
}

/**
 * Validates the service's settings, each alone and then in combination (the module comment
 * lists the rules); throws a ConfigError naming each bad variable. `deployment` says that
 * they serve a deployment whatever VERCEL and VERCEL_ENV say: the deploy build passes it
 * (scripts/migrate.ts --deploy), and the bundled function has it built in.
 */
export function readConfig(
  env: Record<string, string | undefined> = process.env,
  options: { deployment?: boolean } = {},
): Config {
  const settings = parseEnv(EnvSchema, env);
  const config: Config = {
    ...settings,
    deployment: options.deployment || deployedBuild || isVercelDeployment(settings),
  };
  refuse(crossFieldProblems(config));
  return config;
}

let cached: Config | undefined;

/** The process's configuration, read and validated on first use. */
export function getConfig(): Config {
  cached ??= readConfig();
  return cached;
}
