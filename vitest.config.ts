/** Test runner configuration: every suite runs against real databases, so allow for I/O. */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds, once per run, the migrated databases each file copies instead of migrating.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file gets its own module graph, so each opens its own database connection (and
    // reads its own configuration: lib/config.ts caches it per process).
    isolate: true,
    // Request logs are noise when a test passes and evidence when it fails.
    silent: "passed-only",
  },
});
