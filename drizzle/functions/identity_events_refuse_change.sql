-- The trigger function of identity_events_append_only
-- (drizzle/triggers/identity_events_append_only.sql, which says why the audit trail is
-- append-only): any UPDATE, and any DELETE but one, fails with SQLSTATE 42501
-- (insufficient_privilege).
--
-- The one DELETE allowed is an erasure's (identify_forget.sql): an event may go when an
-- erasures row written by the same transaction lists its contact. That rule needs no
-- setting anyone could set and no privileged role: nothing can remove an event without
-- first leaving a permanent record (erasures is append-only too) of which contacts were
-- erased, when and by which request, and only the events of exactly those contacts go.
-- Other customers' events that merely name an erased contact as a former primary stay.
CREATE OR REPLACE FUNCTION identity_events_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP = 'DELETE' AND EXISTS (
       SELECT 1 FROM erasures e
        WHERE e.transaction_id = txid_current()
          AND OLD.contact_id = ANY (e.contact_ids)) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'identity_events is append-only' USING ERRCODE = '42501';
END
$$;
