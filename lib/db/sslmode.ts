/**
 * libpq's sslmode for node-postgres. node-postgres asks a pool for TLS or not, once and for
 * all; libpq's `allow` and `prefer` (its default, so also a URL without sslmode) let the
 * server decide: `prefer` uses TLS when the server offers it and falls back to plaintext,
 * `allow` tries plaintext and moves to TLS when the server refuses that. So this module asks
 * the server when a pool opens and hands node-postgres a URL whose sslmode is the answer.
 * It reads the mode, host and port from the parsed URL (database-url.ts): the ones the TLS
 * rule checked, so a URL naming sslmode twice is connected as it was checked.
 *
 * Once per pool, not per connection: whether a server speaks TLS, and whether its pg_hba
 * admits plaintext, is its configuration, which does not change between two connections of
 * one pool; a reconfigured server is seen by the next pool (the next process or function
 * instance). Asking per connection would cost a round trip on every connect for nothing.
 *
 * Where this is less than libpq: a server that offers TLS but refuses TLS clients
 * (pg_hba `hostnossl` only) gets TLS under `prefer`, where libpq would retry in plaintext;
 * PGSSLMODE is not read (the URL says it, or `prefer`); and a URL that sets node-postgres's
 * own `ssl` parameter without sslmode is left to node-postgres.
 */
import { isIP, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import pg from "pg";
import type { DatabaseUrl, SslMode } from "./database-url.js";
import { DatabaseUnavailableError } from "./errors.js";

/** The mode libpq uses when the URL names none. */
const DEFAULT_MODE: SslMode = "prefer";

/** How a pool will talk to its server: in clear, or over TLS (`prefer` and `allow` settled). */
type Transport = "plaintext" | "tls";

/**
 * The URL node-postgres is given for `url`: its `href` with the sslmode settled. `allow` and
 * `prefer` (or no sslmode) become `disable` or TLS after asking the server at `url.host` and
 * `url.port` (see the module comment), and every mode gets `uselibpqcompat`, without which
 * node-postgres reads `require` as verify-full and would refuse the self-signed certificates
 * `require` exists for. The mode is `url.sslmode`, the one the TLS rule checked. Waits at
 * most `connectTimeoutMs` for the server (DB_CONNECT_TIMEOUT_MS). Throws when the server
 * cannot be reached, or, under `allow`, when it refuses plaintext and offers no TLS.
 */
export async function settleSslMode(url: DatabaseUrl, connectTimeoutMs: number): Promise<string> {
  if (url.sslmode === undefined && url.params.has("ssl")) return url.href;
  const mode = url.sslmode ?? DEFAULT_MODE;
  const settled = new URL(url.href);
  if (!settled.searchParams.has("uselibpqcompat")) {
    settled.searchParams.set("uselibpqcompat", "true");
  }
  const withMode = (chosen: SslMode) => {
    settled.searchParams.set("sslmode", chosen);
    return settled.toString();
  };
  if (mode !== "allow" && mode !== "prefer") return withMode(mode);

  const plaintextUrl = withMode("disable");
  const { host, port } = url;
  // libpq never negotiates TLS over a Unix socket.
  if (host.startsWith("/")) return plaintextUrl;
  const transport =
    mode === "prefer"
      ? await askForTls(host, port, connectTimeoutMs)
      : await allowedTransport(plaintextUrl, host, port, connectTimeoutMs);
  // Under uselibpqcompat, `prefer` is TLS without a certificate check: what libpq does when
  // allow or prefer end up on TLS.
  return transport === "tls" ? withMode("prefer") : plaintextUrl;
}

/**
 * `allow`: plaintext if the server admits a plaintext connection; if it refuses one (an
 * error it sends, such as pg_hba's hostssl-only FATAL 28000 or PgBouncer's "SSL required"),
 * TLS if it offers TLS, as libpq retries; otherwise the refusal itself.
 */
async function allowedTransport(
  plaintextUrl: string,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Transport> {
  const client = new pg.Client({
    connectionString: plaintextUrl,
    connectionTimeoutMillis: timeoutMs,
  });
  try {
    await client.connect();
  } catch (refusal) {
    // A network failure would fail a TLS attempt just the same.
    if (!(refusal instanceof pg.DatabaseError)) throw refusal;
    if ((await askForTls(host, port, timeoutMs)) === "tls") return "tls";
    throw refusal;
  }
  await client.end();
  return "plaintext";
}

/** An SSLRequest: length 8, then the request code 1234.5679 (80877103). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * What `prefer` settles on: TLS when the server answers an SSLRequest with 'S' and the
 * handshake then succeeds; plaintext when it answers 'N' (or, as libpq then retries in
 * plaintext, the handshake fails).
 *
 * Sends the SSLRequest over a fresh TCP connection and, on 'S', completes the TLS handshake
 * (without checking the certificate, as the modes that come here do not) and closes the
 * connection cleanly: an abandoned handshake would log "could not accept SSL connection" on
 * the server every time a pool opens. Gives up after `timeoutMs`.
 */
function askForTls(host: string, port: number, timeoutMs: number): Promise<Transport> {
  return new Promise<Transport>((resolve, reject) => {
    const socket = tcpConnect({ host, port });
    let settled = false;
    const finish = (outcome: { answer: Transport } | { error: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if ("answer" in outcome) resolve(outcome.answer);
      else reject(outcome.error);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish({
        error: new DatabaseUnavailableError(
          `connection timeout: no answer within DB_CONNECT_TIMEOUT_MS (${timeoutMs} ms) from ${host}:${port} to whether it accepts TLS`,
        ),
      });
    }, timeoutMs);
    socket.once("error", (error) => finish({ error }));
    socket.once("close", () =>
      finish({
        error: new DatabaseUnavailableError(
          `Connection terminated by ${host}:${port} before it answered whether it accepts TLS`,
        ),
      }),
    );
    socket.once("connect", () => socket.write(SSL_REQUEST));
    socket.once("data", (data) => {
      const answer = String.fromCharCode(data[0] ?? 0);
      if (answer === "N") {
        socket.end();
        finish({ answer: "plaintext" });
        return;
      }
      if (answer !== "S" || data.length > 1) {
        socket.destroy();
        finish({
          error: new DatabaseUnavailableError(
            `${host}:${port} answered an SSLRequest with neither S nor N: not a PostgreSQL server?`,
          ),
        });
        return;
      }
      socket.removeAllListeners("close");
      socket.removeAllListeners("error");
      const secure = tlsConnect({
        socket,
        rejectUnauthorized: false,
        // TLS sends no server name for an IP address (RFC 6066), nor does node-postgres.
        ...(isIP(host) ? {} : { servername: host }),
      });
      secure.once("secureConnect", () => {
        secure.end();
        finish({ answer: "tls" });
      });
      secure.once("error", () => {
        secure.destroy();
        finish({ answer: "plaintext" });
      });
      secure.once("close", () => finish({ answer: "plaintext" }));
    });
  });
}
