-- The keys of a customer's advisory locks (identify_contact.sql explains the locking): the
-- ids of its contacts still marked primary, plus its oldest contact (the primary it will
-- have once settled), so two requests that see the customer at different moments of a
-- merge still share a key. Sorted, because locks are always taken in ascending order. Once
-- the customer is canonical this is exactly one key, its primary.
--
-- Member sets are matched with `id = ANY (members)`: as a generic plan that is one
-- primary-key probe per member, while joining unnest(members) estimates ten rows and
-- hashes a sequential scan of the whole table. enable_seqscan = off, so that a plan made on
-- a small table without statistics stays those probes as it grows
-- (identify_customer_contact_ids.sql).
CREATE OR REPLACE FUNCTION identify_customer_lock_keys(p_members integer[])
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
BEGIN
  RETURN (SELECT coalesce(array_agg(k.id ORDER BY k.id), '{}')
            FROM (SELECT c.id FROM contacts c
                   WHERE c.id = ANY (p_members) AND c.link_precedence = 'primary'
                  UNION
                  (SELECT c.id FROM contacts c
                    WHERE c.id = ANY (p_members)
                    ORDER BY c.created_at, c.id
                    LIMIT 1)) k);
END
$$;
