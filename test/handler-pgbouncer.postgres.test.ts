import { changesSuite } from "./suites/changes.js";
import { handlerSuite } from "./suites/handler.js";
import { servedDatabase } from "./support/databases.js";

// The whole HTTP contract behind PgBouncer in transaction mode, with server_round_robin.
const database = servedDatabase("pgbouncer");
handlerSuite(database);
changesSuite(database);
