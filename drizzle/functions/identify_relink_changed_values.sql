-- The emails and phone numbers carried by live contacts whose junk status differs between
-- two sets of guardrails (p_before, p_after: options jsonb, lib/db/sql-contract.ts): the
-- values through which `npm run relink --all` would split or join customers after a change
-- of JUNK_EMAILS or JUNK_PHONE_NUMBERS. The deploy build asks it (lib/relink.ts) to say how
-- many customers a relink would change; it never relinks.
--
-- Bounded by the indexes. When only exact values changed, each value that entered or left a
-- list is probed in the partial index on live emails or phones. When a list's patterns
-- changed, any value may have, so that list's distinct values are walked by a loose index
-- scan of the same partial index (identify_relink_distinct_values: one probe per distinct
-- value), never a sequential scan of contacts.
CREATE OR REPLACE FUNCTION identify_relink_changed_values(p_before jsonb, p_after jsonb)
RETURNS TABLE (kind text, value text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_emails_before text[] := identify_junk_list(p_before, 'junkEmails');
  v_email_patterns_before text[] := identify_junk_list(p_before, 'junkEmailPatterns');
  v_phones_before text[] := identify_junk_list(p_before, 'junkPhones');
  v_phone_patterns_before text[] := identify_junk_list(p_before, 'junkPhonePatterns');
  v_emails_after text[] := identify_junk_list(p_after, 'junkEmails');
  v_email_patterns_after text[] := identify_junk_list(p_after, 'junkEmailPatterns');
  v_phones_after text[] := identify_junk_list(p_after, 'junkPhones');
  v_phone_patterns_after text[] := identify_junk_list(p_after, 'junkPhonePatterns');
  v_walk_emails boolean;
  v_walk_phones boolean;
BEGIN
  v_walk_emails := ARRAY(SELECT unnest(coalesce(v_email_patterns_before, '{}')) ORDER BY 1)
                   IS DISTINCT FROM ARRAY(SELECT unnest(coalesce(v_email_patterns_after, '{}')) ORDER BY 1);
  v_walk_phones := ARRAY(SELECT unnest(coalesce(v_phone_patterns_before, '{}')) ORDER BY 1)
                   IS DISTINCT FROM ARRAY(SELECT unnest(coalesce(v_phone_patterns_after, '{}')) ORDER BY 1);
  RETURN QUERY
    WITH candidates (kind, v) AS (
      SELECT 'email'::text, e.value FROM identify_relink_distinct_values('email') e WHERE v_walk_emails
      UNION
      SELECT 'email', x.v
        FROM unnest(coalesce(v_emails_before, '{}') || coalesce(v_emails_after, '{}')) x (v)
       WHERE NOT v_walk_emails
         AND EXISTS (SELECT FROM contacts c WHERE c.email = x.v AND c.deleted_at IS NULL)
      UNION
      SELECT 'phone', p.value FROM identify_relink_distinct_values('phone') p WHERE v_walk_phones
      UNION
      SELECT 'phone', x.v
        FROM unnest(coalesce(v_phones_before, '{}') || coalesce(v_phones_after, '{}')) x (v)
       WHERE NOT v_walk_phones
         AND EXISTS (SELECT FROM contacts c WHERE c.phone_number = x.v AND c.deleted_at IS NULL)
    )
    SELECT k.kind, k.v FROM candidates k
     WHERE CASE k.kind
             WHEN 'email' THEN identify_is_junk(k.v, v_emails_before, v_email_patterns_before)
                               <> identify_is_junk(k.v, v_emails_after, v_email_patterns_after)
             ELSE identify_is_junk(k.v, v_phones_before, v_phone_patterns_before)
                  <> identify_is_junk(k.v, v_phones_after, v_phone_patterns_after)
           END
     ORDER BY 1, 2;
END
$$;
