import { reconcilerSuite } from "./suites/reconciler.js";
import { postgresBackend } from "./support/databases.js";

reconcilerSuite(postgresBackend());
