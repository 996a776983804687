-- The trigger function of erasures_append_only: the erasure records are the part of the
-- audit trail that outlives an erased customer, and the proof that an erasure happened, so
-- no UPDATE or DELETE of erasures is ever allowed (SQLSTATE 42501, insufficient_privilege).
-- TRUNCATE fires no row trigger: it is for tests and for whoever owns the table.
CREATE OR REPLACE FUNCTION erasures_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'erasures is append-only' USING ERRCODE = '42501';
END
$$;
