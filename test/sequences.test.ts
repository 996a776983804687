import { sequencesSuite } from "./suites/sequences.js";
import { pgliteBackend, postgresBackend } from "./support/databases.js";

// Random sequences held to the model of the rules (test/suites/sequences.ts), on both databases.
sequencesSuite(pgliteBackend());
sequencesSuite(postgresBackend());
