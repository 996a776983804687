-- The customer the seeds reach, as the ids of its live contacts (unordered): the walk of
-- identify_customer_contacts, which says what connects contacts and what the arguments mean.
-- explain (lib/explain.ts) shows a customer from it, identify_settle_all walks the table
-- customer by customer with it.
CREATE OR REPLACE FUNCTION identify_customer_contact_ids(p_email text, p_phone text, p_seed_ids integer[], p_options jsonb, p_limit integer DEFAULT NULL, p_deadline timestamptz DEFAULT NULL)
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN (SELECT coalesce(array_agg(m.id), '{}')
            FROM identify_customer_contacts(p_email, p_phone, p_seed_ids, p_options, p_limit, p_deadline) m);
END
$$;
