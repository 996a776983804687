import { changesSuite } from "./suites/changes.js";
import { handlerSuite } from "./suites/handler.js";
import { servedDatabase } from "./support/databases.js";

// The whole HTTP contract through the Neon serverless driver, as deployed on Neon.
const database = servedDatabase("neon");
handlerSuite(database);
changesSuite(database);
