/**
 * Runs before each test file (vitest.config.ts's setupFiles). Workers are reused from file to
 * file (isolate: false), which spares each file loading the dependencies again, so this gives
 * each file what a worker of its own gave it: its own copy of the project's modules (the
 * configuration and the process-wide database are cached in them) and, once it is done, the
 * environment it started with.
 */
import { afterAll, vi } from "vitest";

vi.resetModules();
const environment = { ...process.env };

afterAll(() => {
  for (const name of Object.keys(process.env)) {
    if (!(name in environment)) delete process.env[name];
  }
  Object.assign(process.env, environment);
});
