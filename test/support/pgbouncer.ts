/**
 * A PgBouncer in transaction mode in front of the local PostgreSQL, as a pooled Neon URL is:
 * each transaction may run on another server connection. `server_round_robin = 1` spreads
 * them over every open server connection, so anything that relies on session state (a
 * session advisory lock, a SET) shows up as a failure instead of passing by luck.
 *
 * With `clientTls` it also speaks TLS to its clients, with a self-signed certificate made
 * for it, as a hosted pooler does: `allow` offers TLS and accepts plaintext, `require`
 * refuses plaintext ("SSL required"). Its admin console (`SHOW CLIENTS`) says which
 * clients came over TLS, which pg_stat_ssl on the server behind it cannot.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const BINARY = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((path) => existsSync(path));

/**
 * Whether PgBouncer is installed here; under CI=true its absence is a failure. A function,
 * so that only the files that need PgBouncer say it is missing.
 */
export function pgbouncerAvailable(): boolean {
  if (BINARY) return true;
  if (process.env.CI === "true") {
    throw new Error("CI=true but pgbouncer is not installed (.ci/run installs it)");
  }
  console.warn("\n  NOTICE: pgbouncer is not installed; its suites are SKIPPED.\n");
  return false;
}

export interface Pgbouncer {
  /** `url` with its host and port replaced by the pooler's. */
  pooled(url: string): string;
  /** The admin console's SHOW CLIENTS: one row per client connection, `tls` empty if none. */
  clients(): Promise<PgbouncerClient[]>;
  stop(): Promise<void>;
}

/** The columns of a SHOW CLIENTS row that tests read. */
interface PgbouncerClient {
  database: string;
  application_name: string;
  /** The TLS version and cipher of the client's connection, empty for plaintext. */
  tls: string;
}

interface PgbouncerOptions {
  /** PgBouncer's client_tls_sslmode: offer TLS (`allow`) or insist on it (`require`). */
  clientTls?: "allow" | "require";
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no free port");
  return address.port;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

/** A self-signed certificate and its key in `dir`, for a pooler that speaks TLS. */
async function selfSignedCertificate(dir: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, "server.key");
  const cert = join(dir, "server.crt");
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
  ]);
  return { key, cert };
}

/** Starts PgBouncer in front of `serverUrl`'s host (transaction mode, round robin). */
export async function startPgbouncer(
  serverUrl: string,
  options: PgbouncerOptions = {},
): Promise<Pgbouncer> {
  if (!BINARY) throw new Error("pgbouncer is not installed");
  const server = new URL(serverUrl);
  const user = server.username || "postgres";
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "identify-pgbouncer-"));
  const ini = join(dir, "pgbouncer.ini");
  const files = [dir, ini, join(dir, "users.txt")];
  const tls = options.clientTls ? await selfSignedCertificate(dir) : undefined;
  if (tls) files.push(tls.key, tls.cert);
  await writeFile(join(dir, "users.txt"), `"${user}" ""\n`);
  await writeFile(
    ini,
    [
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      `admin_users = ${user}`,
      "pool_mode = transaction",
      "server_round_robin = 1",
      "default_pool_size = 4",
      "max_client_conn = 200",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      ...(tls && options.clientTls
        ? [
            `client_tls_sslmode = ${options.clientTls}`,
            `client_tls_key_file = ${tls.key}`,
            `client_tls_cert_file = ${tls.cert}`,
          ]
        : []),
      "",
    ].join("\n"),
  );
  // PgBouncer refuses to run as root; CI runs as root, so it drops to the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    for (const path of files) await chown(path, uid, 0);
  }
  const child: ChildProcess = spawn(BINARY, [...(asRoot ? ["-u", "postgres"] : []), ini], {
    stdio: "ignore",
  });
  for (let attempt = 0; !(await accepts(port)); attempt++) {
    if (attempt > 100 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`pgbouncer did not start (exit ${child.exitCode})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pooled = (url: string) => {
    const address = new URL(url);
    address.hostname = "127.0.0.1";
    address.port = String(port);
    return address.toString();
  };
  return {
    pooled,
    async clients() {
      const adminUrl = new URL(pooled(serverUrl));
      adminUrl.pathname = "/pgbouncer";
      // node-postgres directly, not lib/db: what is under test must not do the looking.
      const admin = new pg.Client({
        connectionString: adminUrl.toString(),
        ssl: options.clientTls === "require" ? { rejectUnauthorized: false } : false,
      });
      await admin.connect();
      try {
        return (await admin.query<PgbouncerClient>("SHOW CLIENTS")).rows;
      } finally {
        await admin.end();
      }
    },
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
