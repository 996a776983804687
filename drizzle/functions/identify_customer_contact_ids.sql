-- The customer the seeds reach, as the ids of its contacts (unordered): every live contact
-- connected to the request's linking email and phone, or to the seed contact ids, through
-- shared emails, shared phone numbers or linked_id, in either direction. Junk values
-- (p_options, see identify_junk_list) never connect contacts. identify_contact calls it to
-- find the customer to lock, explain (lib/explain.ts) to show one, identify_settle_all to
-- walk the table customer by customer.
--
-- Breadth first, each value and each id looked up once through the partial indexes on live
-- rows, so the cost grows with the size of the customer and never with the table.
CREATE OR REPLACE FUNCTION identify_customer_contact_ids(p_email text, p_phone text, p_seed_ids integer[], p_options jsonb)
RETURNS integer[]
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_junk_emails text[] := identify_junk_list(p_options, 'junkEmails');
  v_junk_email_patterns text[] := identify_junk_list(p_options, 'junkEmailPatterns');
  v_junk_phones text[] := identify_junk_list(p_options, 'junkPhones');
  v_junk_phone_patterns text[] := identify_junk_list(p_options, 'junkPhonePatterns');
  v_filter_emails boolean := v_junk_emails IS NOT NULL OR v_junk_email_patterns IS NOT NULL;
  v_filter_phones boolean := v_junk_phones IS NOT NULL OR v_junk_phone_patterns IS NOT NULL;
  v_ids integer[] := '{}';
  v_seen_emails text[] := '{}';
  v_seen_phones text[] := '{}';
  v_emails text[] := array_remove(ARRAY[p_email], NULL);
  v_phones text[] := array_remove(ARRAY[p_phone], NULL);
  v_children_of integer[] := '{}';
  v_parents integer[] := coalesce(p_seed_ids, '{}');
  v_found_ids integer[];
  v_found_emails text[];
  v_found_phones text[];
BEGIN
  LOOP
    SELECT coalesce(array_agg(c.id), '{}'),
           coalesce(array_agg(DISTINCT c.email) FILTER (WHERE c.email IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT c.phone_number) FILTER (WHERE c.phone_number IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT c.linked_id) FILTER (WHERE c.linked_id IS NOT NULL), '{}')
      INTO v_found_ids, v_found_emails, v_found_phones, v_parents
      FROM contacts c
     WHERE c.deleted_at IS NULL
       AND (c.email = ANY (v_emails)
            OR c.phone_number = ANY (v_phones)
            OR c.id = ANY (v_parents)
            OR c.linked_id = ANY (v_children_of))
       AND c.id <> ALL (v_ids);
    EXIT WHEN cardinality(v_found_ids) = 0;
    v_ids := v_ids || v_found_ids;
    v_seen_emails := v_seen_emails || v_emails;
    v_seen_phones := v_seen_phones || v_phones;
    v_emails := ARRAY(SELECT e FROM (SELECT unnest(v_found_emails) EXCEPT SELECT unnest(v_seen_emails)) AS n(e)
                       WHERE NOT v_filter_emails
                          OR NOT identify_is_junk(e, v_junk_emails, v_junk_email_patterns));
    v_phones := ARRAY(SELECT p FROM (SELECT unnest(v_found_phones) EXCEPT SELECT unnest(v_seen_phones)) AS n(p)
                       WHERE NOT v_filter_phones
                          OR NOT identify_is_junk(p, v_junk_phones, v_junk_phone_patterns));
    v_children_of := v_found_ids;
    v_parents := ARRAY(SELECT unnest(v_parents) EXCEPT SELECT unnest(v_ids));
  END LOOP;
  RETURN v_ids;
END
$$;
