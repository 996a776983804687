import { sequencesSuite } from "./suites/sequences.js";
import { stormSuite } from "./suites/storm.js";
import { servedDatabase } from "./support/databases.js";

// Every answer held to the model, through the Neon serverless driver and its WebSocket proxy: random sequences
// (test/suites/sequences.ts) and concurrent storms checked for linearizability (test/suites/storm.ts).
const database = servedDatabase("neon");
sequencesSuite(database);
stormSuite(database);
