import { forgetSuite } from "./suites/forget.js";
import { postgresBackend } from "./support/databases.js";

forgetSuite(postgresBackend({ poolMax: 12 }));
