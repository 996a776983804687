-- The values most likely to join strangers (npm run suspects, lib/suspects.ts): each email
-- and phone number that live contacts share, with how many live contacts carry it (counted
-- up to p_count_cap), how many customers those contacts sit in and the primary of the first
-- (the lowest primary id), the p_limit most carried first. A value carried by one contact
-- joins nobody, so it is never listed. Junk values are listed too: the caller marks them.
--
-- Bounded by the indexes, never a sequential scan of contacts: a loose index scan (a skip
-- scan done by hand, as PostgreSQL 15 has none) walks the distinct values of the partial
-- indexes on live emails and live phone numbers, one index probe per distinct value, and
-- counts each value's holders in the same index, stopping at p_count_cap. Its work is thus
-- one probe per distinct value plus at most p_count_cap entries per value: proportional to
-- the live contacts, read from the index, and independent of statistics (enable_seqscan =
-- off and a generic plan, as the other functions).
CREATE OR REPLACE FUNCTION identify_relink_suspects(p_limit integer, p_count_cap integer)
RETURNS TABLE (kind text, value text, contacts integer, customers integer, customer_id integer)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
    WITH RECURSIVE emails (v) AS (
        (SELECT c.email FROM contacts c
          WHERE c.email IS NOT NULL AND c.deleted_at IS NULL ORDER BY c.email LIMIT 1)
      UNION ALL
        SELECT (SELECT c.email FROM contacts c
                 WHERE c.email > e.v AND c.deleted_at IS NULL ORDER BY c.email LIMIT 1)
          FROM emails e WHERE e.v IS NOT NULL
    ), phones (v) AS (
        (SELECT c.phone_number FROM contacts c
          WHERE c.phone_number IS NOT NULL AND c.deleted_at IS NULL ORDER BY c.phone_number LIMIT 1)
      UNION ALL
        SELECT (SELECT c.phone_number FROM contacts c
                 WHERE c.phone_number > p.v AND c.deleted_at IS NULL ORDER BY c.phone_number LIMIT 1)
          FROM phones p WHERE p.v IS NOT NULL
    ), counted AS (
      SELECT 'email'::text AS kind, e.v AS value, h.contacts, h.customers, h.customer_id
        FROM emails e CROSS JOIN LATERAL (
          SELECT count(*)::integer AS contacts,
                 count(DISTINCT coalesce(x.linked_id, x.id))::integer AS customers,
                 min(coalesce(x.linked_id, x.id)) AS customer_id
            FROM (SELECT c.id, c.linked_id FROM contacts c
                   WHERE c.email = e.v AND c.deleted_at IS NULL LIMIT p_count_cap) x) h
       WHERE e.v IS NOT NULL
      UNION ALL
      SELECT 'phone', p.v, h.contacts, h.customers, h.customer_id
        FROM phones p CROSS JOIN LATERAL (
          SELECT count(*)::integer AS contacts,
                 count(DISTINCT coalesce(x.linked_id, x.id))::integer AS customers,
                 min(coalesce(x.linked_id, x.id)) AS customer_id
            FROM (SELECT c.id, c.linked_id FROM contacts c
                   WHERE c.phone_number = p.v AND c.deleted_at IS NULL LIMIT p_count_cap) x) h
       WHERE p.v IS NOT NULL
    )
    SELECT k.kind, k.value, k.contacts, k.customers, k.customer_id
      FROM counted k
     WHERE k.contacts > 1
     ORDER BY k.contacts DESC, k.kind, k.value
     LIMIT p_limit;
END
$$;
