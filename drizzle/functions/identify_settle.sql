-- Makes one customer canonical: its oldest live contact becomes the primary and every other
-- contact points straight at it, each change recorded as a 'relinked' identity event of the
-- request. Idempotent; it performs merges and heals chains or dangling links left by older
-- data. The caller must hold the customer's locks (identify_contact.sql). Returns the
-- primary and how many contacts changed.
--
-- Contacts are found by id (members), so the plans are primary-key probes whatever the
-- statistics (identify_customer_contacts.sql explains enable_seqscan = off); liveness is
-- tested as coalesce(deleted_at IS NULL, false), which no partial index on live rows
-- qualifies for, so that a plan made without statistics cannot read one whole instead.
CREATE OR REPLACE FUNCTION identify_settle(p_members integer[], p_request_id text, OUT primary_id integer, OUT changed integer)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
  v_promoted integer;
BEGIN
  changed := 0;
  SELECT c.id INTO primary_id
    FROM contacts c
   WHERE c.id = ANY (p_members) AND coalesce(c.deleted_at IS NULL, false)
   ORDER BY c.created_at, c.id
   LIMIT 1;
  IF primary_id IS NULL THEN
    RETURN;
  END IF;

  -- The pre-update row (joined as "old") says which primary each contact had before.
  WITH promoted AS (
    UPDATE contacts c
       SET link_precedence = 'primary', linked_id = NULL, updated_at = clock_timestamp()
      FROM contacts old
     WHERE old.id = c.id
       AND c.id = primary_id
       AND (c.link_precedence <> 'primary' OR c.linked_id IS NOT NULL)
    RETURNING c.id, old.linked_id AS old_primary
  )
  INSERT INTO identity_events (request_id, kind, contact_id, old_primary_id, new_primary_id)
  SELECT p_request_id, 'relinked', p.id, p.old_primary, p.id FROM promoted p;
  GET DIAGNOSTICS v_promoted = ROW_COUNT;

  WITH moved AS (
    UPDATE contacts c
       SET link_precedence = 'secondary', linked_id = primary_id, updated_at = clock_timestamp()
      FROM contacts old
     WHERE old.id = c.id
       AND c.id = ANY (p_members)
       AND c.id <> primary_id
       AND coalesce(c.deleted_at IS NULL, false)
       AND (c.link_precedence <> 'secondary' OR c.linked_id IS DISTINCT FROM primary_id)
    RETURNING c.id,
              CASE WHEN old.link_precedence = 'primary' THEN old.id ELSE old.linked_id END AS old_primary
  )
  INSERT INTO identity_events (request_id, kind, contact_id, old_primary_id, new_primary_id)
  SELECT p_request_id, 'relinked', m.id, m.old_primary, primary_id FROM moved m;
  GET DIAGNOSTICS changed = ROW_COUNT;
  changed := changed + v_promoted;
END
$$;
