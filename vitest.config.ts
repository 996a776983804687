/** Test runner configuration: every suite runs against real databases, so allow for I/O. */
import { availableParallelism } from "node:os";
import { setFlagsFromString } from "node:v8";
import { defineConfig } from "vitest/config";

// The suite is CPU-bound on 2 cores, and a fifth of that CPU went to V8's optimizing
// compiler: for the embedded database's WebAssembly (each test file opens its own) and
// for JavaScript that a test runs a few times. Neither pays for itself in a run this
// short. V8 flags are per process, so these reach every worker thread; the processes the
// tests start (npm start, the scripts) run with V8's defaults, as users run them.
setFlagsFromString("--liftoff-only");
setFlagsFromString("--no-opt");

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds, once per run, the migrated databases each file copies instead of migrating.
    globalSetup: ["test/support/global-setup.ts"],
    // Before each file: see isolate below.
    setupFiles: ["test/support/each-file.ts"],
    // Guards against hangs only. On a busy 2-core machine a test that starts a script, or
    // creates a database from nothing, has taken over 30 s.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Worker threads start faster than the default child processes, and the suite is
    // CPU-bound on 2 cores. Each thread has its own process.env (Node gives each a copy).
    pool: "threads",
    // A worker runs file after file instead of starting afresh for each: loading the
    // dependencies (drizzle-orm, the drivers, PGlite) in a new worker cost about half a second
    // of CPU per file. Each file still gets its own copy of the project's modules, so its own
    // configuration and database connection, and its environment is restored after it
    // (test/support/each-file.ts).
    isolate: false,
    // One file per core. Vitest's default leaves a core free, which on a 2-core machine ran
    // the files one at a time, although they spend much of their time waiting on
    // PostgreSQL and on the scripts they start.
    maxWorkers: availableParallelism(),
    // Request logs are noise when a test passes and evidence when it fails.
    silent: "passed-only",
  },
});
