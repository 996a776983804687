-- The trigger function of identity_events_append_only (the trigger is part of the table,
-- created in migration 0003): the audit trail is append-only, because history that can be
-- rewritten explains nothing. Any UPDATE or DELETE of identity_events fails with SQLSTATE
-- 42501 (insufficient_privilege).
CREATE OR REPLACE FUNCTION identity_events_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'identity_events is append-only' USING ERRCODE = '42501';
END
$$;
