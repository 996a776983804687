import { reconcilerSuite } from "./suites/reconciler.js";
import { pgliteBackend } from "./support/databases.js";

reconcilerSuite(pgliteBackend());
