-- The values most likely to join strangers (npm run suspects, lib/suspects.ts): each email
-- and phone number that live contacts share, with how many live contacts carry it (counted
-- up to p_count_cap), how many customers those contacts sit in and the primary of the first
-- (the lowest primary id), the p_limit most carried first. A value carried by one contact
-- joins nobody, so it is never listed. Junk values are listed too: the caller marks them.
--
-- Bounded by the indexes, never a sequential scan of contacts: the distinct values come from
-- loose index scans (identify_relink_distinct_values), and each value's holders are counted
-- in the same partial index, stopping at p_count_cap. Its work is thus one probe per
-- distinct value plus at most p_count_cap entries per value: proportional to the live
-- contacts, read from the index, and independent of statistics (enable_seqscan = off and a
-- generic plan, as the other functions).
CREATE OR REPLACE FUNCTION identify_relink_suspects(p_limit integer, p_count_cap integer)
RETURNS TABLE (kind text, value text, contacts integer, customers integer, customer_id integer)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
    WITH counted AS (
      SELECT 'email'::text AS kind, e.value, h.contacts, h.customers, h.customer_id
        FROM identify_relink_distinct_values('email') e CROSS JOIN LATERAL (
          SELECT count(*)::integer AS contacts,
                 count(DISTINCT coalesce(x.linked_id, x.id))::integer AS customers,
                 min(coalesce(x.linked_id, x.id)) AS customer_id
            FROM (SELECT c.id, c.linked_id FROM contacts c
                   WHERE c.email = e.value AND c.deleted_at IS NULL LIMIT p_count_cap) x) h
      UNION ALL
      SELECT 'phone', p.value, h.contacts, h.customers, h.customer_id
        FROM identify_relink_distinct_values('phone') p CROSS JOIN LATERAL (
          SELECT count(*)::integer AS contacts,
                 count(DISTINCT coalesce(x.linked_id, x.id))::integer AS customers,
                 min(coalesce(x.linked_id, x.id)) AS customer_id
            FROM (SELECT c.id, c.linked_id FROM contacts c
                   WHERE c.phone_number = p.value AND c.deleted_at IS NULL LIMIT p_count_cap) x) h
    )
    SELECT k.kind, k.value, k.contacts, k.customers, k.customer_id
      FROM counted k
     WHERE k.contacts > 1
     ORDER BY k.contacts DESC, k.kind, k.value
     LIMIT p_limit;
END
$$;
