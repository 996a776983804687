/**
 * The function as `npm run build` writes it (scripts/build-function.ts), built once per run by
 * the global setup for every file that checks or runs the bundle: esbuild's bundling costs
 * about a second of CPU, and what two builds of one tree produce is the same.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { buildFunction } from "../../scripts/build-function.js";

/** Builds the Build Output into a new folder; returns it and how to remove it. */
export async function buildFunctionOnce(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "identify-build-"));
  try {
    await buildFunction(dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The run's Build Output folder (.vercel/output's layout). Tests only read it. */
    builtFunction: string;
  }
}

/** The run's Build Output folder, and the function's folder and bundle inside it. */
export function builtFunction(): { output: string; functionDir: string; bundle: string } {
  const output = inject("builtFunction");
  const functionDir = join(output, "functions/api/identify.func");
  return { output, functionDir, bundle: join(functionDir, "index.mjs") };
}
