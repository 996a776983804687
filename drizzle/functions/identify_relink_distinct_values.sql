-- The distinct emails (p_kind 'email') or phone numbers (any other p_kind) that live contacts
-- carry, ascending: what npm run suspects counts and what the deploy build's notice tests
-- against changed junk patterns (identify_relink_suspects, identify_relink_changed_values).
--
-- A loose index scan (a skip scan done by hand, as PostgreSQL 15 has none): one probe of the
-- partial index on live emails or phones per distinct value, each starting past the last,
-- never a sequential scan of contacts, whatever the statistics (enable_seqscan = off, a
-- generic plan, as the other functions).
CREATE OR REPLACE FUNCTION identify_relink_distinct_values(p_kind text)
RETURNS TABLE (value text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
  IF p_kind = 'email' THEN
    RETURN QUERY
      WITH RECURSIVE found (v) AS (
          (SELECT c.email FROM contacts c
            WHERE c.email IS NOT NULL AND c.deleted_at IS NULL ORDER BY c.email LIMIT 1)
        UNION ALL
          SELECT (SELECT c.email FROM contacts c
                   WHERE c.email > f.v AND c.deleted_at IS NULL ORDER BY c.email LIMIT 1)
            FROM found f WHERE f.v IS NOT NULL
      )
      SELECT f.v FROM found f WHERE f.v IS NOT NULL;
  ELSE
    RETURN QUERY
      WITH RECURSIVE found (v) AS (
          (SELECT c.phone_number FROM contacts c
            WHERE c.phone_number IS NOT NULL AND c.deleted_at IS NULL ORDER BY c.phone_number LIMIT 1)
        UNION ALL
          SELECT (SELECT c.phone_number FROM contacts c
                   WHERE c.phone_number > f.v AND c.deleted_at IS NULL ORDER BY c.phone_number LIMIT 1)
            FROM found f WHERE f.v IS NOT NULL
      )
      SELECT f.v FROM found f WHERE f.v IS NOT NULL;
  END IF;
END
$$;
