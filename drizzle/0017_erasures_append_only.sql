-- The erasure records are append-only, like identity_events (0003): the trigger is part of
-- the table; its function lives in drizzle/functions/erasures_refuse_change.sql.
CREATE TRIGGER erasures_append_only
BEFORE UPDATE OR DELETE ON erasures
FOR EACH ROW EXECUTE FUNCTION erasures_refuse_change();
