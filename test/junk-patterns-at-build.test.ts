/**
 * The junk patterns the deploy build checked are not checked again on the function's first
 * request: `npm run vercel-build` runs scripts/migrate.ts --deploy, which has PostgreSQL compile
 * them (and fails the build on one it refuses), then bundles the function with a record of
 * them (scripts/build-function.ts --after-deploy-migration; lib/guardrails.ts). Patterns other
 * than the recorded ones are still checked. To tell a check from none, the tests claim a
 * pattern PostgreSQL refuses was checked: a check answers 500 misconfigured, none serves.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "../lib/config.js";
import { getDatabase } from "../lib/db/client.js";
import { ConfigError } from "../lib/errors.js";
import {
  checkJunkPatternsUnlessBuilt,
  guardrailsFrom,
  junkPatternsKey,
} from "../lib/guardrails.js";
import { bundleFunction } from "../scripts/build-function.js";
import {
  createPostgresDatabase,
  postgresAvailable,
  serveScratchDatabase,
} from "./support/databases.js";

/** A pattern JavaScript takes and PostgreSQL refuses (2201B). */
const REFUSED = "/(?<n>0)/";
const refusedConfig = readConfig({ JUNK_EMAILS: REFUSED });

describe("the junk-pattern check on the first request", () => {
  serveScratchDatabase();

  it("asks PostgreSQL nothing when the build checked exactly these patterns", async () => {
    const checked = junkPatternsKey(guardrailsFrom(refusedConfig));
    await expect(
      checkJunkPatternsUnlessBuilt(await getDatabase(), refusedConfig, checked),
    ).resolves.toBeUndefined();
  });

  it("still has PostgreSQL compile patterns the build did not check", async () => {
    const checked = junkPatternsKey(guardrailsFrom(readConfig({ JUNK_EMAILS: "/^noreply@/" })));
    await expect(
      checkJunkPatternsUnlessBuilt(await getDatabase(), refusedConfig, checked),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it("still has PostgreSQL compile them when no build recorded any", async () => {
    await expect(
      checkJunkPatternsUnlessBuilt(await getDatabase(), refusedConfig, undefined),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});

describe.skipIf(!postgresAvailable())("a function bundled after the deploy migration", () => {
  let folder: string;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  const saved = { ...process.env };

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "identify-junk-build-"));
    database = await createPostgresDatabase();
  });
  afterAll(async () => {
    process.env = saved;
    await rm(folder, { recursive: true, force: true });
    await database.drop();
  });

  /** The first answer of a freshly bundled function, its own module state, to a phone lookup. */
  async function firstAnswer(checked: string): Promise<number> {
    const bundle = join(folder, "index.mjs");
    await bundleFunction(join(import.meta.dirname, "../api/identify.ts"), bundle, checked);
    process.env = {
      ...saved,
      DATABASE_URL: database.url,
      JUNK_EMAILS: REFUSED,
      // The bundle is a deployment whatever the environment says: it serves only with a key.
      API_KEYS: "key-of-a-test-deployment",
      ALLOW_PUBLIC_ACCESS: "",
    };
    const handler = (await import(pathToFileURL(bundle).href)) as {
      default: { fetch(request: Request): Promise<Response> };
    };
    const response = await handler.default.fetch(
      new Request("http://localhost/identify", {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: "Bearer key-of-a-test-deployment",
        },
        body: JSON.stringify({ phoneNumber: "555" }),
      }),
    );
    return response.status;
  }

  it("serves its first request without compiling the recorded patterns again", async () => {
    expect(await firstAnswer(junkPatternsKey(guardrailsFrom(refusedConfig)))).toBe(200);
  });
});
