-- Reconciliation runs inside Postgres so that every POST /identify is exactly one statement:
-- a serverless function is a network hop away from its database, and locks must never be
-- held across that hop. See README "Design" for the reasoning behind each step.

-- The customer a request reaches: every live contact connected to the request's email or
-- phone through shared emails, shared phone numbers or linked_id, in either direction.
-- Expands identifier values and link ids breadth first, each looked up once, so the cost
-- grows with the size of the customer and never with the size of the table.
CREATE FUNCTION identify_component(p_email text, p_phone text)
RETURNS integer[]
LANGUAGE plpgsql STABLE
AS $$
DECLARE
  v_ids integer[] := '{}';
  v_seen_emails text[] := '{}';
  v_seen_phones text[] := '{}';
  v_emails text[] := array_remove(ARRAY[p_email], NULL);
  v_phones text[] := array_remove(ARRAY[p_phone], NULL);
  v_children_of integer[] := '{}';
  v_parents integer[] := '{}';
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
    v_emails := ARRAY(SELECT unnest(v_found_emails) EXCEPT SELECT unnest(v_seen_emails));
    v_phones := ARRAY(SELECT unnest(v_found_phones) EXCEPT SELECT unnest(v_seen_phones));
    v_children_of := v_found_ids;
    v_parents := ARRAY(SELECT unnest(v_parents) EXCEPT SELECT unnest(v_ids));
  END LOOP;
  RETURN v_ids;
END
$$;
--> statement-breakpoint

-- The advisory-lock keys that stand for a customer: every contact in it still marked
-- primary, plus its oldest contact (the primary it will have once settled). Sorted, because
-- locks are always taken in ascending order.
CREATE FUNCTION identify_customer_keys(p_members integer[])
RETURNS integer[]
LANGUAGE sql STABLE
AS $$
  SELECT coalesce(array_agg(k.id ORDER BY k.id), '{}')
    FROM (SELECT c.id FROM contacts c
           WHERE c.id = ANY (p_members) AND c.link_precedence = 'primary'
          UNION
          (SELECT c.id FROM contacts c
            WHERE c.id = ANY (p_members)
            ORDER BY c.created_at, c.id
            LIMIT 1)) k
$$;
--> statement-breakpoint

-- Makes one customer canonical: its oldest live contact becomes the primary and every other
-- contact points straight at it. Idempotent; serves merges and heals chains left by older
-- data. The caller must hold the customer's locks. Returns how many rows it changed.
CREATE FUNCTION identify_settle(p_members integer[], OUT primary_id integer, OUT changed integer)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_promoted integer;
BEGIN
  changed := 0;
  SELECT c.id INTO primary_id
    FROM contacts c
   WHERE c.id = ANY (p_members) AND c.deleted_at IS NULL
   ORDER BY c.created_at, c.id
   LIMIT 1;
  IF primary_id IS NULL THEN
    RETURN;
  END IF;

  UPDATE contacts c
     SET link_precedence = 'primary', linked_id = NULL, updated_at = clock_timestamp()
   WHERE c.id = primary_id
     AND (c.link_precedence <> 'primary' OR c.linked_id IS NOT NULL);
  GET DIAGNOSTICS v_promoted = ROW_COUNT;

  UPDATE contacts c
     SET link_precedence = 'secondary', linked_id = primary_id, updated_at = clock_timestamp()
   WHERE c.id = ANY (p_members)
     AND c.id <> primary_id
     AND c.deleted_at IS NULL
     AND (c.link_precedence <> 'secondary' OR c.linked_id IS DISTINCT FROM primary_id);
  GET DIAGNOSTICS changed = ROW_COUNT;
  changed := changed + v_promoted;
END
$$;
--> statement-breakpoint

-- POST /identify in one call: lock, read, decide, write, and return the customer's rows
-- (oldest first, so the primary is row one). Arguments must already be normalized.
--
-- Locking, all transaction-scoped (safe behind a transaction-mode pooler):
--  1. one advisory lock per request identifier, in sorted order: two requests that could
--     create or extend the same customer are serialized before either reads;
--  2. one advisory lock per customer reached (identify_customer_keys), ascending; then the
--     customer is read again. If it grew while we waited (a concurrent merge), the customer
--     locks are released by rolling back the sub-block and the new set is locked instead,
--     so no transaction ever waits for a lock while holding a larger one.
-- Outcomes: created | added_secondary | merged | unchanged.
CREATE FUNCTION identify_contact(p_email text, p_phone text, p_lock_timeout_ms integer DEFAULT 5000)
RETURNS TABLE (
  outcome text,
  id integer,
  email text,
  phone_number text,
  link_precedence link_precedence,
  linked_id integer,
  created_at timestamptz
)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  c_customer_lock_space CONSTANT integer := 1768383844;
  v_key bigint;
  v_customer integer;
  v_wanted integer[];
  v_current integer[];
  v_members integer[];
  v_primary integer;
  v_changed integer;
  v_new_id integer;
  v_outcome text := 'unchanged';
BEGIN
  IF p_email IS NULL AND p_phone IS NULL THEN
    RAISE EXCEPTION 'identify_contact needs an email or a phone number' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('lock_timeout', coalesce(p_lock_timeout_ms, 0)::text, true);

  FOR v_key IN
    SELECT k.key FROM (
      SELECT hashtextextended('email:' || p_email, 0) AS key WHERE p_email IS NOT NULL
      UNION
      SELECT hashtextextended('phone:' || p_phone, 0) WHERE p_phone IS NOT NULL
    ) k ORDER BY k.key
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  v_wanted := identify_customer_keys(identify_component(p_email, p_phone));
  LOOP
    BEGIN
      FOREACH v_customer IN ARRAY v_wanted LOOP
        PERFORM pg_advisory_xact_lock(c_customer_lock_space, v_customer);
      END LOOP;
      v_members := identify_component(p_email, p_phone);
      v_current := identify_customer_keys(v_members);
      EXIT WHEN v_current <@ v_wanted;
      RAISE EXCEPTION USING ERRCODE = 'IDR01', MESSAGE = 'customer changed while waiting';
    EXCEPTION WHEN SQLSTATE 'IDR01' THEN
      v_wanted := v_current;
    END;
  END LOOP;

  IF cardinality(v_members) = 0 THEN
    INSERT INTO contacts AS c (email, phone_number, link_precedence, created_at, updated_at)
    VALUES (p_email, p_phone, 'primary', clock_timestamp(), clock_timestamp())
    RETURNING c.id INTO v_new_id;
    v_members := ARRAY[v_new_id];
    v_outcome := 'created';
  ELSE
    SELECT s.primary_id, s.changed INTO v_primary, v_changed FROM identify_settle(v_members) s;
    IF v_changed > 0 THEN
      v_outcome := 'merged';
    END IF;
    IF (p_email IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM contacts c WHERE c.id = ANY (v_members) AND c.email = p_email))
       OR (p_phone IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM contacts c WHERE c.id = ANY (v_members) AND c.phone_number = p_phone))
    THEN
      INSERT INTO contacts AS c (email, phone_number, linked_id, link_precedence, created_at, updated_at)
      VALUES (p_email, p_phone, v_primary, 'secondary', clock_timestamp(), clock_timestamp())
      RETURNING c.id INTO v_new_id;
      v_members := v_members || v_new_id;
      v_outcome := 'added_secondary';
    END IF;
  END IF;

  RETURN QUERY
    SELECT v_outcome, c.id, c.email, c.phone_number, c.link_precedence, c.linked_id, c.created_at
      FROM contacts c
     WHERE c.id = ANY (v_members)
     ORDER BY c.created_at, c.id;
END
$$;
