import { sequencesSuite } from "./suites/sequences.js";
import { stormSuite } from "./suites/storm.js";
import { servedDatabase } from "./support/databases.js";

// Every answer held to the model, through PgBouncer in transaction mode: random sequences
// (test/suites/sequences.ts) and concurrent storms checked for linearizability (test/suites/storm.ts).
const database = servedDatabase("pgbouncer");
sequencesSuite(database);
stormSuite(database);
