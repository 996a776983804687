/**
 * A database URL (DATABASE_URL, DATABASE_URL_UNPOOLED), parsed once into the object that the
 * TLS rule checks and the drivers connect with, so that the two cannot read different values.
 *
 * A parameter named twice takes its last value, as libpq and node-postgres's parser
 * (pg-connection-string) both do: `?sslmode=disable&sslmode=require` means require. Refusing
 * such a URL would be as safe, but psql accepts it, and once one rule is fixed the value is
 * unambiguous. What made it dangerous was two readers: the TLS rule took the last sslmode
 * while the connection took the first, and sent the password in clear. So the drivers never
 * see the URL as written: they get `href`, which names every parameter once, with the value
 * this object holds, and names the host and port explicitly (a URL without them would
 * otherwise let PGHOST or PGPORT move the connection). node-postgres's own parse of `href`
 * then finds exactly the host, port, sslmode, sslrootcert and options checked here
 * (test/database-url.test.ts holds it to that).
 *
 * The TLS rule for a Vercel deployment lives here too, on the same object: a node-postgres
 * URL to another machine needs an sslmode that always encrypts. sslmode.ts settles libpq's
 * `allow` and `prefer` when a pool opens.
 */
import * as v from "valibot";
import { isLoopbackHost } from "../hosts.js";

/** libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html). */
export const SSL_MODES = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const;

/** One of libpq's sslmode values. */
export type SslMode = (typeof SSL_MODES)[number];

const isSslMode = (value: string): value is SslMode => SSL_MODES.some((mode) => mode === value);

/** The sslmode values that may send in clear: libpq falls back to, or starts with, plaintext. */
const PLAINTEXT_SSL_MODES: ReadonlySet<SslMode> = new Set(["disable", "allow", "prefer"]);

/** Where node-postgres connects when a URL names no host (and PGHOST is unset). */
const DEFAULT_HOST = "localhost";

/** PostgreSQL's port, where node-postgres connects when a URL names none. */
const DEFAULT_PORT = 5432;

/** A database URL as parsed once: what the checks read and the drivers connect with. */
export interface DatabaseUrl {
  /** The variable that holds it, which every message about it names. */
  readonly variable: string;
  /** Where it connects: the last non-empty `?host=`, else the URL's host; a path is a Unix socket. */
  readonly host: string;
  /** The last non-empty `?port=`, else the URL's port, else 5432. */
  readonly port: number;
  /** The database name, from the path. */
  readonly database: string;
  /** The last sslmode given; undefined when none is (libpq then prefers TLS). */
  readonly sslmode: SslMode | undefined;
  /** The last sslrootcert given: the CA file a certificate check trusts. */
  readonly sslrootcert: string | undefined;
  /** The last `options` given: settings the server applies to the session (`-c name=value`). */
  readonly options: string | undefined;
  /** Every query parameter, once each, with its last value. */
  readonly params: ReadonlyMap<string, string>;
  /** The URL the drivers are given: every parameter once, host and port explicit. */
  readonly href: string;
}

/**
 * Parses `value`, held by `variable`, into the one object the checks and the drivers read.
 * @returns the object, or the reason it is refused (never quoting the URL, which holds a password).
 */
export function parseDatabaseUrl(variable: string, value: string): DatabaseUrl | string {
  if (!URL.canParse(value)) return `${variable} must be a URL`;
  const url = new URL(value);
  const sslmodes = url.searchParams.getAll("sslmode");
  if (!sslmodes.every(isSslMode)) return `sslmode must be one of ${SSL_MODES.join(", ")}`;

  // A later value replaces an earlier one, as libpq and pg-connection-string read them.
  const params = new Map<string, string>();
  for (const [name, given] of url.searchParams) {
    params.delete(name);
    params.set(name, given);
  }
  let urlHost: string;
  try {
    urlHost = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, "$1");
  } catch {
    return "the host name has a malformed % escape";
  }
  // node-postgres skips an empty ?host= or ?port=, and so do the checks.
  const host = params.get("host") || urlHost || DEFAULT_HOST;
  const portText = params.get("port") || url.port || String(DEFAULT_PORT);
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65_535) {
    return "port must be a number from 1 to 65535";
  }
  if (!params.get("host") && !urlHost) params.set("host", host);
  if (!params.get("port") && !url.port) params.set("port", portText);

  url.search = new URLSearchParams([...params]).toString();
  let database: string;
  try {
    database = decodeURIComponent(url.pathname.slice(1));
  } catch {
    return "the database name has a malformed % escape";
  }
  return {
    variable,
    host,
    port,
    database,
    sslmode: params.get("sslmode") as SslMode | undefined,
    sslrootcert: params.get("sslrootcert"),
    options: params.get("options"),
    params,
    href: url.toString(),
  };
}

/**
 * The valibot schema of a database URL variable: trims it, and turns it into a DatabaseUrl,
 * or an issue that names `variable` and quotes nothing of the value.
 */
export const databaseUrlSchema = (variable: string) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const parsed = parseDatabaseUrl(variable, dataset.value);
      if (typeof parsed === "string") {
        addIssue({ message: parsed });
        return NEVER;
      }
      return parsed;
    }),
  );

/** Hosts served by Neon's own WebSocket proxy, which the Neon driver reaches. */
const isNeonHost = (host: string) => /\.neon\.(tech|build)$/i.test(host);

/**
 * Whether `url` is reached with node-postgres: not a Neon host, and no NEON_WS_PROXY. The one
 * driver rule: lib/db/client.ts's driverFor picks by it, and the TLS rule below applies it
 * (the Neon driver always goes through TLS, wss://, or a loopback ws:// proxy). The host is
 * where the connection goes, `?host=` included, as for every other rule.
 */
export function usesNodePostgres(url: DatabaseUrl, neonWsProxy: string | undefined): boolean {
  return !neonWsProxy && !isNeonHost(url.host);
}

/**
 * Why `url`, as node-postgres uses it, might travel in clear to another machine, or
 * undefined when it cannot: a Unix socket or loopback host, or an sslmode that always
 * encrypts (require, verify-ca, verify-full).
 */
function plaintextReason(url: DatabaseUrl): string | undefined {
  // A Unix socket (a path, percent-encoded in the host name or in ?host=) never leaves the machine.
  if (url.host.startsWith("/") || isLoopbackHost(url.host)) return undefined;
  if (url.sslmode === undefined) return "has no sslmode, so node-postgres connects without TLS";
  if (PLAINTEXT_SSL_MODES.has(url.sslmode)) {
    return `has sslmode=${url.sslmode}, which may connect without TLS`;
  }
  return undefined;
}

/**
 * The TLS rule of a Vercel deployment for `url`: what is wrong, naming its variable, or
 * undefined when the connection cannot go in clear to another machine (the caller waives
 * the rule under ALLOW_PLAINTEXT_DATABASE=true).
 */
export function plaintextProblem(
  url: DatabaseUrl,
  neonWsProxy: string | undefined,
): string | undefined {
  if (!usesNodePostgres(url, neonWsProxy)) return undefined;
  const reason = plaintextReason(url);
  if (!reason) return undefined;
  return (
    `${url.variable}: on a Vercel deployment it ${reason} to another machine. Add ` +
    "?sslmode=verify-full to the URL, in place of any sslmode it has (or sslmode=require, " +
    "which encrypts without checking the certificate), or set " +
    "ALLOW_PLAINTEXT_DATABASE=true to send in clear on purpose"
  );
}
