/** The shared suites (test/suites/shared.ts) on a PostgreSQL database of this file's own. */
import { sharedSuites } from "./suites/shared.js";
import { servedDatabase } from "./support/databases.js";

sharedSuites(servedDatabase("postgres"));
