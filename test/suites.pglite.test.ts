/** The shared suites (test/suites/shared.ts) on one copy of the migrated embedded database. */
import { sharedSuites } from "./suites/shared.js";
import { servedDatabase } from "./support/databases.js";

sharedSuites(servedDatabase("pglite"));
