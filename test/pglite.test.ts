/**
 * The shared suites (test/suites/) on the embedded database, one copy of the migrated template, served to all of them: the contract over HTTP,
 * the reconciler, the audit trail and guardrails, erasure, and the invariant checker.
 */
import { auditSuite } from "./suites/audit.js";
import { forgetSuite } from "./suites/forget.js";
import { handlerSuite } from "./suites/handler.js";
import { invariantsSuite } from "./suites/invariants.js";
import { reconcilerSuite } from "./suites/reconciler.js";
import { servedDatabase } from "./support/databases.js";

const database = servedDatabase("pglite");

handlerSuite(database);
reconcilerSuite(database);
auditSuite(database);
forgetSuite(database);
invariantsSuite(database);
