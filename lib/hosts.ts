/**
 * Which hosts are this machine. Two rules lean on it: a database URL that never leaves the
 * machine needs no TLS (lib/db/database-url.ts), and `npm start` on an interface other
 * machines reach needs API keys (scripts/server-config.ts).
 */
import { isIP } from "node:net";

/**
 * The loopback names, as URLs spell them: where a ws:// NEON_WS_PROXY may be, and the Host names
 * `npm start` answers to unless ALLOWED_HOSTS says otherwise.
 */
export const LOOPBACK_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "[::1]"];

/**
 * True for a host name that only reaches this machine: `localhost`, 127.0.0.0/8 or ::1
 * (with or without brackets). Anything else, `0.0.0.0` and `::` among them, reaches others.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost") return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  // URLs spell every form of an IPv6 address the same way ([::1] for 0:0:0:0:0:0:0:1).
  const url = `http://[${name}]`;
  return isIP(name) === 6 && URL.canParse(url) && new URL(url).hostname === "[::1]";
}
