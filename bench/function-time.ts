/**
 * `npm run bench:function`: the database time of one call of each implementation's
 * function, with nothing else in the way (no Node, no HTTP): pgbench, one client, prepared
 * statements, against identify_contact and minimal_identify on their own fresh databases
 * of 10,000 analyzed contacts, alternating run by run. Reads the mean time per call from
 * pg_stat_user_functions, as the main bench does. pgbench ships with PostgreSQL's client.
 *
 *   npm run bench:function -- [--seconds 4] [--rounds 3]
 */
import { parseArgs } from "node:util";
import { type BenchDatabase, createBenchDatabase } from "./database.js";
import {
  createSamples,
  functionWorkloads,
  microsPerCall,
  pgbenchServer,
  SERVICE_OPTIONS,
} from "./pgbench.js";
import { preloadCustomers } from "./preload.js";
import type { Implementation } from "./server.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const call: Record<Implementation, (email: string, phone: string) => string> = {
  ours: (email, phone) => `select * from identify_contact(${email}, ${phone}, ${SERVICE_OPTIONS});`,
  minimal: (email, phone) => `select * from minimal_identify(${email}, ${phone});`,
};
const WORKLOADS = { ours: functionWorkloads(call.ours), minimal: functionWorkloads(call.minimal) };

const FUNCTION: Record<Implementation, string> = {
  ours: "identify_contact",
  minimal: "minimal_identify",
};

async function prepare(impl: Implementation): Promise<BenchDatabase> {
  const database = await createBenchDatabase(adminUrl, impl);
  if (impl === "ours") await database.connection.migrate();
  await preloadCustomers(database.connection.db, 10_000, true);
  await createSamples(database);
  return database;
}

pgbenchServer(adminUrl);

const databases = { ours: await prepare("ours"), minimal: await prepare("minimal") };
try {
  console.log("workload             ours µs/call  minimal µs/call  ratio");
  for (const name of Object.keys(WORKLOADS.ours)) {
    for (let round = 0; round < Number(values.rounds); round++) {
      const measure = (impl: Implementation) =>
        microsPerCall(databases[impl], FUNCTION[impl], WORKLOADS[impl][name] ?? "", values.seconds);
      const ours = await measure("ours");
      const minimal = await measure("minimal");
      console.log(
        `${name.padEnd(20)} ${ours.toFixed(1).padStart(13)} ${minimal.toFixed(1).padStart(16)}  ${(ours / minimal).toFixed(2)}x`,
      );
    }
  }
} finally {
  await databases.ours.drop();
  await databases.minimal.drop();
}
