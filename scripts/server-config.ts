/**
 * The settings only `npm start` reads (PORT, HOST, ALLOWED_HOSTS), validated the way
 * lib/config.ts validates the service's: a bad value is a ConfigError naming the variable.
 * Vercel never reads them, so they never fail a deployment. One rule spans the service's
 * settings too: a HOST other machines reach needs API_KEYS, or ALLOW_PUBLIC_ACCESS=true.
 */
import { isIP } from "node:net";
import * as v from "valibot";
import { listItems, parseEnv, readConfig, refuse } from "../lib/config.js";
import { isLoopbackHost, LOOPBACK_HOSTS } from "../lib/hosts.js";

/** What ALLOWED_HOSTS takes: a host name alone, as written before any port. */
const ALLOWED_HOST = /^(?:\[[0-9a-f:.]+\]|[^:/?#@[\]\s]+)$/i;

/**
 * A host name as URLs normalize it (lower case, IPv6 in brackets), or undefined for
 * anything but a bare host name. A port is refused even when it is the scheme's default
 * (`x.com:80`), which a URL would drop without a trace.
 */
function normalizedHost(entry: string): string | undefined {
  if (!ALLOWED_HOST.test(entry) || !URL.canParse(`http://${entry}`)) return undefined;
  const url = new URL(`http://${entry}`);
  // Anything but a bare host (a path, credentials) makes href differ.
  return url.href === `http://${url.hostname}/` ? url.hostname : undefined;
}

/** A host name or IP address to listen on. */
const LISTEN_HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i;

/** The variables only `npm start` reads (the README lists them with the service's). */
export const ServerEnvSchema = v.object({
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
              message:
                `"${entry}" is not a host name: write the name alone, without a scheme, port ` +
                "or path (it is answered on any port), IPv6 in brackets, e.g. identify.internal,[::1]",
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

/** The settings of `npm start`, validated. */
export type ServerConfig = v.InferOutput<typeof ServerEnvSchema>;

/**
 * Validates the settings of `npm start` (PORT, HOST, ALLOWED_HOSTS) and the service's (see
 * readConfig), and refuses to serve other machines (a HOST that is not loopback) without
 * API_KEYS, unless ALLOW_PUBLIC_ACCESS is true: on loopback it stays keyless, for
 * development.
 * @throws ConfigError naming each bad variable.
 */
export function readServerConfig(
  env: Record<string, string | undefined> = process.env,
): ServerConfig {
  const server = parseEnv(ServerEnvSchema, env);
  const { API_KEYS, ALLOW_PUBLIC_ACCESS } = readConfig(env);
  if (!isLoopbackHost(server.HOST) && !API_KEYS && !ALLOW_PUBLIC_ACCESS) {
    refuse([
      `API_KEYS: required to listen on HOST=${server.HOST}, which other machines reach, since ` +
        "the API answers anyone who knows one email or phone number with the customer's every " +
        "email and phone number. Set API_KEYS (clients send Authorization: Bearer <key>), set " +
        "ALLOW_PUBLIC_ACCESS=true to serve anyone on purpose, or listen on HOST=127.0.0.1",
    ]);
  }
  return server;
}
