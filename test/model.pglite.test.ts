import { sequencesSuite } from "./suites/sequences.js";
import { servedDatabase } from "./support/databases.js";

// Random sequences held to the model of the rules (test/suites/sequences.ts) on the embedded
// database, which serves one connection: the storms need PostgreSQL (test/model.*.test.ts).
sequencesSuite(servedDatabase("pglite"));
