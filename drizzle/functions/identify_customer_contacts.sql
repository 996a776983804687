-- The customer the seeds reach, as its live contacts (unordered): every live
-- contact connected to the request's linking email and phone, or to the seed contact ids,
-- through shared emails, shared phone numbers or linked_id, in either direction. Junk values
-- (p_options, see identify_junk_list) never connect contacts. identify_lock_customer calls it
-- (for identify_contact and identify_forget) to read a customer under its locks when its
-- one-hop read cannot (a merge, a chain, a split or deleted primary, seeds, a large
-- customer), or when asked to walk; explain (lib/explain.ts) to show one, and
-- identify_settle_all to walk the table customer by customer (those two through
-- identify_customer_contact_ids, which returns just the ids). Rows carry what
-- identify_lock_customer decides from: linked_id (NULL exactly for a contact marked primary)
-- and created_at.
--
-- Soft-deleted contacts (deleted_at set) are invisible: never returned, and their email and
-- phone number find and join nothing. They do not take a customer apart either: a live
-- contact whose linked_id names a deleted one still reaches it, and through it that deleted
-- contact's own linked_id and its live secondaries. So deleting any contact (the primary, a
-- secondary that bridged two others, a leaf) leaves the rest of its customer one customer;
-- the next request that reaches it settles it under its oldest live contact
-- (identify_settle). Only a chain of two deleted contacts is not walked downwards (the
-- linked_id index holds live rows only); identify_settle never leaves one, older data might.
--
-- Bounded work. p_limit: stop once p_limit + 1 live contacts are found (NULL = the whole
-- customer), so the caller tells "over the cap" from more than p_limit rows. p_deadline:
-- past it, raise 57014 (query_canceled), as statement_timeout would (NULL = none).
--
-- One recursive query over a graph of contacts ('c' rows) and values ('e' email, 'p' phone
-- rows). UNION keeps every row found so far in a hash table and drops repeats, so each
-- contact and each value is expanded once: the cost is linear in the size of the customer
-- (the edges walked), never quadratic, and never grows with the table. PostgreSQL runs a
-- recursive query only as far as its reader fetches, so the LIMIT stops the walk itself.
--
-- Plans that do not depend on statistics. The generic plan is made once per session, maybe
-- on a small, never-analyzed table, and then serves it at any size. So each kind of step is
-- its own branch with one index condition (email, phone, linked_id partial indexes on live
-- rows, primary key), enable_seqscan = off rules out reading the table, and a lookup by id
-- never says `deleted_at IS NULL` (liveness is read from the row, or tested as
-- coalesce(deleted_at IS NULL, false), which the planner cannot match): that predicate
-- would qualify every partial index on live rows, and a plan made without statistics reads
-- one whole as if it were small. An OR of the four conditions did just that, and a lookup
-- grew with the table until the first ANALYZE (bench/README.md, "Planned once").
CREATE OR REPLACE FUNCTION identify_customer_contacts(p_email text, p_phone text, p_seed_ids integer[], p_options jsonb, p_limit integer DEFAULT NULL, p_deadline timestamptz DEFAULT NULL)
RETURNS TABLE (id integer, email text, phone_number text, linked_id integer, created_at timestamptz)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  -- Four helper calls cost a request more than its lookups do: made only when there is junk.
  v_any_junk boolean := p_options ?| ARRAY['junkEmails', 'junkEmailPatterns', 'junkPhones', 'junkPhonePatterns'];
  v_junk_emails text[] := CASE WHEN v_any_junk THEN identify_junk_list(p_options, 'junkEmails') END;
  v_junk_email_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(p_options, 'junkEmailPatterns') END;
  v_junk_phones text[] := CASE WHEN v_any_junk THEN identify_junk_list(p_options, 'junkPhones') END;
  v_junk_phone_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(p_options, 'junkPhonePatterns') END;
  v_filter_emails boolean := v_junk_emails IS NOT NULL OR v_junk_email_patterns IS NOT NULL;
  v_filter_phones boolean := v_junk_phones IS NOT NULL OR v_junk_phone_patterns IS NOT NULL;
  v_deadline timestamptz := coalesce(p_deadline, 'infinity');
BEGIN
  -- A row: k = 'e' | 'p' with the value in v, or k = 'c' with the contact's columns.
  RETURN QUERY
  WITH RECURSIVE reached (k, v, id, email, phone, linked, created, live) AS (
      SELECT 'e'::"char", p_email, NULL::integer, NULL::text, NULL::text, NULL::integer, NULL::timestamptz, NULL::boolean
       WHERE p_email IS NOT NULL
      UNION
      SELECT 'p'::"char", p_phone, NULL, NULL, NULL, NULL, NULL, NULL
       WHERE p_phone IS NOT NULL
      UNION
      -- seeds count only when live (coalesce: see below, a lookup by id qualifies no partial index)
      SELECT 'c'::"char", NULL, c.id, c.email, c.phone_number, c.linked_id, c.created_at, true
        FROM contacts c
       WHERE c.id = ANY (p_seed_ids) AND coalesce(c.deleted_at IS NULL, false)
    UNION
      SELECT n.k, n.v, n.id, n.email, n.phone, n.linked, n.created, n.live
        FROM reached r
        CROSS JOIN LATERAL (
              -- the live contacts holding a value
              SELECT 'c'::"char" AS k, NULL::text AS v, c.id, c.email, c.phone_number AS phone,
                     c.linked_id AS linked, c.created_at AS created, true AS live
                FROM contacts c
               WHERE r.k = 'e' AND c.email = r.v AND c.deleted_at IS NULL
              UNION ALL
              SELECT 'c', NULL, c.id, c.email, c.phone_number, c.linked_id, c.created_at, true
                FROM contacts c
               WHERE r.k = 'p' AND c.phone_number = r.v AND c.deleted_at IS NULL
              UNION ALL
              -- a contact's primary (or whatever its linked_id names), live or deleted
              SELECT 'c', NULL, c.id, c.email, c.phone_number, c.linked_id, c.created_at, c.deleted_at IS NULL
                FROM contacts c
               WHERE r.k = 'c' AND c.id = r.linked
              UNION ALL
              -- a contact's live secondaries
              SELECT 'c', NULL, c.id, c.email, c.phone_number, c.linked_id, c.created_at, true
                FROM contacts c
               WHERE r.k = 'c' AND c.linked_id = r.id AND c.deleted_at IS NULL
              UNION ALL
              -- a live contact's values, unless junk
              SELECT 'e', r.email, NULL, NULL, NULL, NULL, NULL, NULL
               WHERE r.k = 'c' AND r.live AND r.email IS NOT NULL
                 AND (NOT v_filter_emails OR NOT identify_is_junk(r.email, v_junk_emails, v_junk_email_patterns))
              UNION ALL
              SELECT 'p', r.phone, NULL, NULL, NULL, NULL, NULL, NULL
               WHERE r.k = 'c' AND r.live AND r.phone IS NOT NULL
                 AND (NOT v_filter_phones OR NOT identify_is_junk(r.phone, v_junk_phones, v_junk_phone_patterns))
            ) n
       WHERE clock_timestamp() < v_deadline
  )
  SELECT r.id, r.email, r.phone, r.linked, r.created
    FROM reached r WHERE r.k = 'c' AND r.live LIMIT p_limit + 1;
  -- The walk stops producing rows at the deadline; say why rather than answer a part.
  IF clock_timestamp() >= v_deadline THEN
    RAISE EXCEPTION 'identify: the statement ran past its deadline' USING ERRCODE = '57014';
  END IF;
END
$$;
