/**
 * A PgBouncer in transaction mode in front of the local PostgreSQL, as a pooled Neon URL is:
 * each transaction may run on another server connection. `server_round_robin = 1` spreads
 * them over every open server connection, so anything that relies on session state (a
 * session advisory lock, a SET) shows up as a failure instead of passing by luck.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
  stop(): Promise<void>;
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

/** Starts PgBouncer in front of `serverUrl`'s host (transaction mode, round robin). */
export async function startPgbouncer(serverUrl: string): Promise<Pgbouncer> {
  if (!BINARY) throw new Error("pgbouncer is not installed");
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "identify-pgbouncer-"));
  const ini = join(dir, "pgbouncer.ini");
  await writeFile(join(dir, "users.txt"), `"${server.username || "postgres"}" ""\n`);
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
      "pool_mode = transaction",
      "server_round_robin = 1",
      "default_pool_size = 4",
      "max_client_conn = 200",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      "",
    ].join("\n"),
  );
  // PgBouncer refuses to run as root; CI runs as root, so it drops to the postgres user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
    for (const path of [dir, ini, join(dir, "users.txt")]) await chown(path, uid, 0);
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
  return {
    pooled(url) {
      const pooled = new URL(url);
      pooled.hostname = "127.0.0.1";
      pooled.port = String(port);
      return pooled.toString();
    },
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
