/**
 * Every suite that holds a database to the product's contract: over HTTP, the reconciler,
 * the audit trail and guardrails, the change feed, erasure, the invariant checker, and the
 * customer read's fast path against its walk. test/suites.pglite.test.ts
 * and test/suites.postgres.test.ts run them all on the one database each serves.
 */
import type { Backend } from "../support/databases.js";
import { auditSuite } from "./audit.js";
import { changesSuite } from "./changes.js";
import { forgetSuite } from "./forget.js";
import { handlerSuite } from "./handler.js";
import { invariantsSuite } from "./invariants.js";
import { lockCustomerSuite } from "./lock-customer.js";
import { reconcilerSuite } from "./reconciler.js";

/** Each suite leaves the schema as it found it, so their order does not matter. */
export function sharedSuites(database: Backend): void {
  invariantsSuite(database);
  handlerSuite(database);
  reconcilerSuite(database);
  auditSuite(database);
  changesSuite(database);
  forgetSuite(database);
  lockCustomerSuite(database);
}
