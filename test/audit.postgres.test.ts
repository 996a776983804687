import { auditSuite } from "./suites/audit.js";
import { postgresBackend } from "./support/databases.js";

auditSuite(postgresBackend());
