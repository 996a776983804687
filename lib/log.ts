/**
 * Structured logs: one JSON line per event on stdout, which Vercel and any log shipper
 * index as-is. Callers pass only fields that are safe to keep: never an email address or a
 * phone number.
 */

type LogLevel = "info" | "warn" | "error";

/** Writes one JSON log line. */
export function log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
}
