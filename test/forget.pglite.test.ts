import { forgetSuite } from "./suites/forget.js";
import { pgliteBackend } from "./support/databases.js";

forgetSuite(pgliteBackend());
