/**
 * A Vercel deployment is closed unless opened, on each path that reads its configuration:
 * the deploy build (scripts/migrate.ts --deploy, which `npm run vercel-build` runs first),
 * the function as built and launched in a fresh process the way Vercel's Node launcher runs
 * it, and the handler. Each runs with VERCEL=1 and VERCEL_ENV=production, as on Vercel, and
 * the build and the bundle also without them, as on a project that does not expose them.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type NeonWsProxy, startNeonWsProxy } from "../scripts/neon-ws-proxy.js";
import { builtFunction } from "./support/built-function.js";
import {
  connect,
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";
import { postIdentify } from "./support/http.js";
import { runMain } from "./support/scripts.js";

const run = promisify(execFile);

const KEY = "k3y-for-deploy-tests-0123456789";
const PRODUCTION = { VERCEL: "1", VERCEL_ENV: "production" };
/** Never contacted: every test that gives it fails on its configuration first. */
const NEON_URL = "postgres://app:s3cret-pw@ep-quiet-1234.us-east-2.aws.neon.tech/identify";

/** What one request got from the built function. */
interface Answer {
  status: number;
  body: { error?: { code: string }; contact?: unknown };
}

/**
 * Imports the bundle the way Vercel's Node launcher does (import, unwrap `default`, call its
 * `fetch` with a Web Request), then POSTs each body with its Authorization header, if any,
 * and prints each answer on an `answer <json>` line.
 */
const INVOKER = `
import { pathToFileURL } from "node:url";
const [handlerPath, ...requests] = process.argv.slice(2);
let listener = await import(pathToFileURL(handlerPath).href);
for (let i = 0; i < 5 && listener.default; i++) listener = listener.default;
for (const request of requests) {
  const { authorization, body } = JSON.parse(request);
  const headers = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  const response = await listener.fetch(
    new Request("https://identify.example/identify", { method: "POST", headers, body: JSON.stringify(body) }),
  );
  process.stdout.write("answer " + JSON.stringify({ status: response.status, body: await response.json() }) + "\\n");
}
process.exit(0);
`;

/** The run's bundle (test/support/built-function.ts). */
const { bundle } = builtFunction();
let folder: string;
let invoker: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "identify-deploy-access-"));
  invoker = join(folder, "invoke.mjs");
  await writeFile(invoker, INVOKER);
});
afterAll(() => rm(folder, { recursive: true, force: true }));

/**
 * Sends `requests` to the built function in a fresh Node process that has only `env` (and
 * PATH), as a Vercel instance has only the project's variables.
 * @returns each answer, and everything the function logged.
 */
async function invokeBuilt(
  env: Record<string, string>,
  requests: { authorization?: string; body: unknown }[],
): Promise<{ answers: Answer[]; log: string }> {
  const { stdout, stderr } = await run(
    process.execPath,
    [invoker, bundle, ...requests.map((request) => JSON.stringify(request))],
    { env: { PATH: process.env.PATH, ...env } },
  );
  const answers = stdout
    .split("\n")
    .filter((line) => line.startsWith("answer "))
    .map((line) => JSON.parse(line.slice("answer ".length)) as Answer);
  return { answers, log: stdout + stderr };
}

describe("the built function on a production deployment", () => {
  it("answers every request 500 misconfigured without API_KEYS, naming no customer, and logs API_KEYS", async () => {
    const { answers, log } = await invokeBuilt({ ...PRODUCTION, DATABASE_URL: NEON_URL }, [
      { body: { email: "doc@hillvalley.edu" } },
      { authorization: `Bearer ${KEY}`, body: { phoneNumber: "1985" } },
    ]);
    expect(answers.map((answer) => answer.status)).toEqual([500, 500]);
    for (const answer of answers) {
      expect(answer.body.error?.code).toBe("misconfigured");
      expect(answer.body.contact).toBeUndefined();
    }
    expect(log).toMatch(/API_KEYS: this Vercel deployment \(production\) has no access control/);
    expect(log).toContain("ALLOW_PUBLIC_ACCESS=true");
    expect(log).not.toContain("s3cret-pw");
  });

  it("answers 500 misconfigured for a plaintext node-postgres DATABASE_URL, and logs DATABASE_URL", async () => {
    const { answers, log } = await invokeBuilt(
      { ...PRODUCTION, API_KEYS: KEY, DATABASE_URL: "postgres://app:s3cret-pw@db.example.com/id" },
      [{ authorization: `Bearer ${KEY}`, body: { email: "doc@hillvalley.edu" } }],
    );
    expect(answers).toEqual([expect.objectContaining({ status: 500 })]);
    expect(log).toMatch(/DATABASE_URL: on a Vercel deployment it has no sslmode/);
    expect(log).not.toContain("s3cret-pw");
  });
});

describe.skipIf(!postgresAvailable())(
  "a production deployment with API_KEYS, on PostgreSQL",
  () => {
    let database: TestDatabase;
    let proxy: NeonWsProxy;

    beforeAll(async () => {
      database = await createPostgresDatabase();
      const { hostname, port } = new URL(database.url);
      proxy = await startNeonWsProxy({ allow: [`${hostname}:${port || 5432}`] });
    });
    afterAll(async () => {
      await proxy?.close();
      await database?.drop();
    });

    it("the built function answers 401 without a token or with a wrong one, and 200 with the key", async () => {
      const body = { email: "doc@hillvalley.edu", phoneNumber: "1985" };
      const { answers } = await invokeBuilt(
        { ...PRODUCTION, API_KEYS: KEY, DATABASE_URL: database.url, NEON_WS_PROXY: proxy.url },
        [
          { body },
          { authorization: "Bearer not-the-key-but-long-enough", body },
          { authorization: `Bearer ${KEY}`, body },
        ],
      );
      expect(answers.map((answer) => answer.status)).toEqual([401, 401, 200]);
      expect(answers[0]?.body.error?.code).toBe("unauthorized");
      expect(answers[2]?.body.contact).toMatchObject({ emails: ["doc@hillvalley.edu"] });
    });

    it("the handler answers 401 without a token and 200 with the key", async () => {
      // node-postgres on loopback: a deployment may reach it without TLS.
      Object.assign(process.env, PRODUCTION, { API_KEYS: KEY, DATABASE_URL: database.url });
      vi.spyOn(console, "log").mockImplementation(() => {});
      try {
        const body = { email: "marty@hillvalley.edu" };
        expect((await postIdentify(body)).status).toBe(401);
        const served = await postIdentify(body, { headers: { Authorization: `Bearer ${KEY}` } });
        expect(served.status).toBe(200);
      } finally {
        vi.restoreAllMocks();
        const { closeDatabase } = await import("../lib/db/client.js");
        await closeDatabase();
        for (const name of ["VERCEL", "VERCEL_ENV", "API_KEYS", "DATABASE_URL"]) {
          delete process.env[name];
        }
      }
    });
  },
);

/**
 * What a project that stops exposing Vercel's system variables gets: neither VERCEL nor
 * VERCEL_ENV, at build time or in its functions. The build and the bundle are a deployment's
 * anyway.
 */
describe.skipIf(!postgresAvailable())("without VERCEL and VERCEL_ENV", () => {
  const WITHOUT_SYSTEM_VARIABLES = {
    VERCEL: "",
    VERCEL_ENV: "",
    API_KEYS: "",
    ALLOW_PUBLIC_ACCESS: "",
  };
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPostgresDatabase({ migrated: false });
  });
  afterAll(() => database?.drop());

  it("the deploy build fails naming API_KEYS, before migrating anything", async () => {
    const result = await runMain("scripts/migrate.ts", ["--deploy"], {
      ...WITHOUT_SYSTEM_VARIABLES,
      DATABASE_URL: database.url,
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(
      /API_KEYS: this Vercel deployment \(no VERCEL_ENV\) has no access control/,
    );
    const inspect = await connect({ DATABASE_URL: database.url });
    try {
      const result = (await inspect.db.execute(
        sql`select to_regclass('public.contacts') is not null as migrated`,
      )) as unknown as { rows: { migrated: boolean }[] };
      expect(result.rows).toEqual([{ migrated: false }]);
    } finally {
      await inspect.close();
    }
  });

  it("the built function answers a keyless request 500 misconfigured, naming no customer", async () => {
    const migrated = await createPostgresDatabase();
    try {
      const { answers, log } = await invokeBuilt({ DATABASE_URL: migrated.url }, [
        { body: { email: "doc@hillvalley.edu", phoneNumber: "1985" } },
      ]);
      expect(answers).toEqual([
        { status: 500, body: { error: expect.objectContaining({ code: "misconfigured" }) } },
      ]);
      expect(log).toMatch(
        /API_KEYS: this Vercel deployment \(no VERCEL_ENV\) has no access control/,
      );
    } finally {
      await migrated.drop();
    }
  });
});

describe.skipIf(!postgresAvailable())("the deploy build (scripts/migrate.ts --deploy)", () => {
  let database: TestDatabase;

  beforeAll(async () => {
    // Empty: whatever the script migrates shows.
    database = await createPostgresDatabase({ migrated: false });
  });
  afterAll(() => database?.drop());

  /** Whether the database holds identify's schema (the migrations' table, or contacts). */
  async function migrated(): Promise<boolean> {
    const inspect = await connect({ DATABASE_URL: database.url });
    try {
      const result = (await inspect.db.execute(sql`
        select to_regclass('public.contacts') is not null
            or to_regnamespace('drizzle') is not null as migrated`)) as unknown as {
        rows: { migrated: boolean }[];
      };
      return result.rows[0]?.migrated ?? true;
    } finally {
      await inspect.close();
    }
  }

  it("fails naming API_KEYS and ALLOW_PUBLIC_ACCESS before migrating anything", async () => {
    const result = await runMain("scripts/migrate.ts", ["--deploy"], {
      ...PRODUCTION,
      API_KEYS: "",
      ALLOW_PUBLIC_ACCESS: "",
      DATABASE_URL: database.url,
    });
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/API_KEYS: this Vercel deployment \(production\)/);
    expect(result.output).toContain("ALLOW_PUBLIC_ACCESS=true");
    expect(await migrated()).toBe(false);
  });

  it("fails for a preview build without API_KEYS, and one that names no environment", async () => {
    for (const env of [{ VERCEL_ENV: "preview" }, { VERCEL_ENV: "" }]) {
      const result = await runMain("scripts/migrate.ts", ["--deploy"], {
        VERCEL: "1",
        ...env,
        API_KEYS: "",
        ALLOW_PUBLIC_ACCESS: "",
        DATABASE_URL: database.url,
      });
      expect(result.code).not.toBe(0);
      expect(result.output).toMatch(/API_KEYS: this Vercel deployment/);
    }
    expect(await migrated()).toBe(false);
  });

  it("migrates once API_KEYS is set", async () => {
    const result = await runMain("scripts/migrate.ts", ["--deploy"], {
      ...PRODUCTION,
      API_KEYS: KEY,
      ALLOW_PUBLIC_ACCESS: "",
      DATABASE_URL: database.url,
    });
    expect(result.output).toContain("is up to date");
    expect(result.code).toBe(0);
    expect(await migrated()).toBe(true);
  });
});
