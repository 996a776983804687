/**
 * A throwaway PostgreSQL cluster for the bench: initdb in a temporary directory, started with
 * pg_stat_statements preloaded on a free port of 127.0.0.1, stopped and deleted afterwards.
 *
 * Why: counting the statements a request costs needs pg_stat_statements, which a server loads
 * only at start (`shared_preload_libraries`). A shared server without it must not be
 * restarted or reconfigured for a benchmark, so the bench brings up a server of its own from
 * the same PostgreSQL binaries instead. initdb refuses to run as root; as root the cluster
 * runs as the `postgres` system user, as distribution packages run theirs.
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server.js";

/** A running throwaway cluster. */
export interface ThrowawayCluster {
  /** Server-level URL: superuser `postgres`, database `postgres`, trust authentication. */
  readonly url: string;
  readonly dataDir: string;
  /** The directory of the binaries it runs, e.g. /usr/lib/postgresql/15/bin. */
  readonly binDir: string;
  /** Stops the server (fast shutdown) and deletes its directory. Safe to call twice. */
  stop(): void;
}

const hasInitdb = (dir: string) =>
  existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl"));

/**
 * The directory holding initdb and pg_ctl: `PG_BIN` when set, else pg_config's bindir, else
 * the newest of /usr/lib/postgresql/<major>/bin (Debian and Ubuntu keep them off the PATH);
 * with `major`, that major version's directory first, so the cluster matches the server it
 * stands in for. Undefined when none is found.
 */
export function findPostgresBin(major?: number, env = process.env): string | undefined {
  if (env.PG_BIN) return hasInitdb(env.PG_BIN) ? env.PG_BIN : undefined;
  const candidates: string[] = [];
  const debian = "/usr/lib/postgresql";
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (major !== undefined && versions.includes(String(major))) {
    candidates.push(join(debian, String(major), "bin"));
  }
  try {
    candidates.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8" }).trim());
  } catch {
    // no pg_config on the PATH
  }
  candidates.push(...versions.map((version) => join(debian, version, "bin")));
  return candidates.find(hasInitdb);
}

/** uid and gid of the `postgres` system user, when running as root; else undefined. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      "initdb refuses to run as root, and there is no postgres system user to run it as",
    );
  }
}

/** Runs one of the cluster's binaries, as the postgres user when root; throws with its output. */
function run(binDir: string, tool: string, args: string[], user?: { uid: number; gid: number }) {
  const result = spawnSync(join(binDir, tool), args, {
    encoding: "utf8",
    ...user,
    // pg_ctl's server inherits no terminal; its log goes to a file in the data directory.
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  if (result.status !== 0) {
    const output = `${result.stderr ?? ""}${result.stdout ?? ""}`.trim().split("\n").slice(-5);
    throw new Error(
      `${tool} failed (${result.error?.message ?? `exit ${result.status}`}): ${output.join(" / ")}`,
    );
  }
}

/**
 * Creates and starts a cluster with pg_stat_statements preloaded. Settings are PostgreSQL's
 * defaults but for autovacuum, off as on the shared server the bench was written against: the
 * flat section measures tables nobody analyzed, and must stay so.
 */
export async function startThrowawayCluster(binDir: string): Promise<ThrowawayCluster> {
  const user = runAs();
  const dataDir = mkdtempSync(join(tmpdir(), "identify-bench-pg-"));
  let started = false;
  const stop = () => {
    if (started) {
      started = false;
      try {
        run(binDir, "pg_ctl", ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "30"], user);
      } catch {
        run(binDir, "pg_ctl", ["stop", "-D", dataDir, "-m", "immediate", "-w"], user);
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (user) chownSync(dataDir, user.uid, user.gid);
    // --no-locale with UTF8: byte-order collation, as C.UTF-8 gives, on any operating system.
    run(
      binDir,
      "initdb",
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
      ],
      user,
    );
    const port = await freePort();
    appendFileSync(
      join(dataDir, "postgresql.conf"),
      [
        "",
        "# identify bench: a throwaway cluster",
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dataDir}'`,
        "shared_preload_libraries = 'pg_stat_statements'",
        "pg_stat_statements.track = top",
        "autovacuum = off",
        "",
      ].join("\n"),
    );
    run(
      binDir,
      "pg_ctl",
      ["start", "-D", dataDir, "-l", join(dataDir, "server.log"), "-w", "-t", "60"],
      user,
    );
    started = true;
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, dataDir, binDir, stop };
  } catch (error) {
    // The server's own words, before its directory goes.
    const log = join(dataDir, "server.log");
    const tail = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").slice(-3) : [];
    stop();
    if (tail.length === 0) throw error;
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}; server log: ${tail.join(" / ")}`,
    );
  }
}
