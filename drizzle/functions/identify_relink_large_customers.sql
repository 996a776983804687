-- The customers of at least p_min_contacts live contacts (npm run suspects, lib/suspects.ts),
-- largest first, each with its size counted up to p_count_cap: the customers a junk value
-- has grown, which requests start refusing (409) at the cap.
--
-- Bounded by an index, never a sequential scan of contacts: a loose index scan walks the
-- distinct linked_id values of contacts_linked_id_live_idx (the primaries that have live
-- secondaries), one probe each, and counts each one's live secondaries in the same index,
-- stopping at p_count_cap. A customer's size is its primary (when live) plus its
-- secondaries, which is the whole customer in the canonical form every writer leaves; a
-- customer left unsettled by older data counts per primary it still has.
CREATE OR REPLACE FUNCTION identify_relink_large_customers(p_min_contacts integer, p_count_cap integer)
RETURNS TABLE (customer_id integer, contacts integer)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
    WITH RECURSIVE primaries (id) AS (
        (SELECT c.linked_id FROM contacts c
          WHERE c.linked_id IS NOT NULL AND c.deleted_at IS NULL ORDER BY c.linked_id LIMIT 1)
      UNION ALL
        SELECT (SELECT c.linked_id FROM contacts c
                 WHERE c.linked_id > p.id AND c.deleted_at IS NULL ORDER BY c.linked_id LIMIT 1)
          FROM primaries p WHERE p.id IS NOT NULL
    ), sized AS (
      SELECT p.id,
             (SELECT count(*)::integer FROM (
                SELECT 1 FROM contacts c
                 WHERE c.linked_id = p.id AND c.deleted_at IS NULL LIMIT p_count_cap) s)
             + (SELECT count(*)::integer FROM contacts c
                 WHERE c.id = p.id AND coalesce(c.deleted_at IS NULL, false)) AS contacts
        FROM primaries p
       WHERE p.id IS NOT NULL
    )
    SELECT s.id, s.contacts FROM sized s
     WHERE s.contacts >= p_min_contacts
     ORDER BY s.contacts DESC, s.id;
END
$$;
