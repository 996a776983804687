-- The trigger function of erasures_append_only (drizzle/triggers/erasures_append_only.sql,
-- which says why erasures is append-only): no UPDATE or DELETE of erasures is ever allowed
-- (SQLSTATE 42501, insufficient_privilege).
CREATE OR REPLACE FUNCTION erasures_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'erasures is append-only' USING ERRCODE = '42501';
END
$$;
