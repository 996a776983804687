-- identity_events is the audit trail: every change identify makes to contacts is recorded
-- there by the statement that makes it. It is append-only, because history that can be
-- rewritten explains nothing, and this trigger is what makes it so for every role and every
-- client, not only for code that means well: each UPDATE, and each DELETE but an erasure's,
-- fails with SQLSTATE 42501 (the rule is drizzle/functions/identity_events_refuse_change.sql).
-- BEFORE, so a refused change is never made; FOR EACH ROW, because whether a DELETE is an
-- erasure's depends on the row. TRUNCATE fires no row trigger: it is for tests and for
-- whoever owns the table.
CREATE OR REPLACE TRIGGER identity_events_append_only
BEFORE UPDATE OR DELETE ON identity_events
FOR EACH ROW EXECUTE FUNCTION identity_events_refuse_change();
