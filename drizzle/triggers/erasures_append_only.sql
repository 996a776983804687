-- The erasure records are the part of the audit trail that outlives an erased customer, and
-- the proof that an erasure happened, so they are append-only like identity_events: this
-- trigger refuses every UPDATE and DELETE of erasures (SQLSTATE 42501, from
-- drizzle/functions/erasures_refuse_change.sql). It is also what makes the one DELETE
-- identity_events allows safe: an erasures row, once written, can be neither changed nor
-- taken back. TRUNCATE fires no row trigger: it is for tests and for whoever owns the
-- table.
CREATE OR REPLACE TRIGGER erasures_append_only
BEFORE UPDATE OR DELETE ON erasures
FOR EACH ROW EXECUTE FUNCTION erasures_refuse_change();
