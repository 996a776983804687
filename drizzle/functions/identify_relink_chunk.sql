-- The next p_limit live contact ids after p_after, ascending: how `npm run relink -- --all`
-- (lib/relink.ts) walks the table in bounded chunks, a range read of the primary key each,
-- whatever the table's size or statistics (enable_seqscan = off, a generic plan).
CREATE OR REPLACE FUNCTION identify_relink_chunk(p_after integer, p_limit integer)
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
BEGIN
  RETURN ARRAY(SELECT c.id FROM contacts c
                WHERE c.id > p_after AND coalesce(c.deleted_at IS NULL, false)
                ORDER BY c.id
                LIMIT p_limit);
END
$$;
