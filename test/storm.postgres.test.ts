import { stormSuite } from "./suites/storm.js";
import { servedDatabase } from "./support/databases.js";

// The storm held to the model (test/suites/storm.ts) through node-postgres.
stormSuite(servedDatabase("postgres"));
