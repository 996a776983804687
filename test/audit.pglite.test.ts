import { auditSuite } from "./suites/audit.js";
import { pgliteBackend } from "./support/databases.js";

auditSuite(pgliteBackend());
