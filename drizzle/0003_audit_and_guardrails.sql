-- Version 2 of the reconciliation functions (see 0001 for the locking design, unchanged):
--  * every change is recorded in identity_events within the same statement;
--  * opt-in guardrails: junk values that are stored but never link customers, and a cap on
--    contacts per customer;
--  * identify_contact takes its settings as one jsonb argument, so new settings do not
--    change its signature again.
-- With the guardrails off, behaviour is exactly that of version 1.

DROP FUNCTION identify_contact(text, text, integer);
--> statement-breakpoint
DROP FUNCTION identify_settle(integer[]);
--> statement-breakpoint
DROP FUNCTION identify_component(text, text);
--> statement-breakpoint

-- The audit trail is append-only: history that can be rewritten explains nothing.
CREATE FUNCTION identity_events_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  RAISE EXCEPTION 'identity_events is append-only' USING ERRCODE = '42501';
END
$$;
--> statement-breakpoint
CREATE TRIGGER identity_events_append_only
BEFORE UPDATE OR DELETE ON identity_events
FOR EACH ROW EXECUTE FUNCTION identity_events_refuse_change();
--> statement-breakpoint

-- Whether a value is junk: listed exactly, or matching one of the PostgreSQL regular
-- expressions. Junk is stored on contacts but never used to link them.
CREATE FUNCTION identify_is_junk(p_value text, p_exact text[], p_patterns text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
  SELECT p_value = ANY (coalesce(p_exact, '{}'))
      OR EXISTS (SELECT 1 FROM unnest(coalesce(p_patterns, '{}')) AS p(pattern)
                  WHERE p_value ~ p.pattern)
$$;
--> statement-breakpoint

-- The junk settings of an options object, as arrays (null when there are none).
CREATE FUNCTION identify_junk_list(p_options jsonb, p_key text)
RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE WHEN jsonb_typeof(p_options -> p_key) = 'array'
              THEN ARRAY(SELECT jsonb_array_elements_text(p_options -> p_key)) END
$$;
--> statement-breakpoint

-- The customer a request reaches: every live contact connected to the seeds (the
-- request's email and phone, plus any seed contact ids) through shared emails, shared
-- phone numbers or linked_id, in either direction. Junk values never connect contacts.
-- Breadth first, each value looked up once: cost grows with the customer, not the table.
CREATE FUNCTION identify_component(p_email text, p_phone text, p_seed_ids integer[], p_options jsonb)
RETURNS integer[]
LANGUAGE plpgsql STABLE
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
--> statement-breakpoint

-- Makes one customer canonical: its oldest live contact becomes the primary and every other
-- contact points straight at it, each change recorded as a 'relinked' event of the request.
-- Idempotent; serves merges and heals chains left by older data. The caller must hold the
-- customer's locks. Returns the primary and how many contacts changed.
CREATE FUNCTION identify_settle(p_members integer[], p_request_id text, OUT primary_id integer, OUT changed integer)
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

  -- The pre-update row (joined as "old") says which primary each contact had before.
  WITH promoted AS (
    UPDATE contacts c
       SET link_precedence = 'primary', linked_id = NULL, updated_at = clock_timestamp()
      FROM contacts old
     WHERE old.id = c.id
       AND c.id = primary_id
       AND (c.link_precedence <> 'primary' OR c.linked_id IS NOT NULL)
    RETURNING c.id, old.linked_id AS old_primary
  )
  INSERT INTO identity_events (request_id, kind, contact_id, old_primary_id, new_primary_id)
  SELECT p_request_id, 'relinked', p.id, p.old_primary, p.id FROM promoted p;
  GET DIAGNOSTICS v_promoted = ROW_COUNT;

  WITH moved AS (
    UPDATE contacts c
       SET link_precedence = 'secondary', linked_id = primary_id, updated_at = clock_timestamp()
      FROM contacts old
     WHERE old.id = c.id
       AND c.id = ANY (p_members)
       AND c.id <> primary_id
       AND c.deleted_at IS NULL
       AND (c.link_precedence <> 'secondary' OR c.linked_id IS DISTINCT FROM primary_id)
    RETURNING c.id,
              CASE WHEN old.link_precedence = 'primary' THEN old.id ELSE old.linked_id END AS old_primary
  )
  INSERT INTO identity_events (request_id, kind, contact_id, old_primary_id, new_primary_id)
  SELECT p_request_id, 'relinked', m.id, m.old_primary, primary_id FROM moved m;
  GET DIAGNOSTICS changed = ROW_COUNT;
  changed := changed + v_promoted;
END
$$;
--> statement-breakpoint

-- POST /identify in one call: lock, read, decide, write, record, and return the customer's
-- rows (oldest first, so the primary is row one). Arguments must already be normalized.
-- p_options (all optional):
--   requestId          text     recorded on every identity event
--   lockTimeoutMs      integer  longest lock wait before SQLSTATE 55P03 (default 5000; 0 = forever)
--   maxContacts        integer  refuse (SQLSTATE IDC01) to grow a customer past this many contacts
--   junkEmails, junkEmailPatterns, junkPhones, junkPhonePatterns   text[]   values that never link
--
-- Locking (unchanged from version 1), all transaction-scoped:
--  1. one advisory lock per linking identifier of the request, in sorted order;
--  2. one advisory lock per customer reached (identify_customer_keys), ascending; then the
--     customer is read again, and if it grew while we waited the sub-block is rolled back
--     (releasing only the customer locks) and the new set is locked instead.
-- Outcomes: created | added_secondary | merged | unchanged.
CREATE FUNCTION identify_contact(p_email text, p_phone text, p_options jsonb DEFAULT '{}')
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
  v_options jsonb := coalesce(p_options, '{}');
  v_request_id text := coalesce(v_options ->> 'requestId', 'unknown');
  v_max_contacts integer := (v_options ->> 'maxContacts')::integer;
  v_link_email text := p_email;
  v_link_phone text := p_phone;
  v_seeds integer[] := '{}';
  v_key bigint;
  v_customer integer;
  v_wanted integer[];
  v_current integer[];
  v_members integer[];
  v_primary integer;
  v_changed integer;
  v_new_id integer;
  v_needs_insert boolean;
  v_merging boolean;
  v_outcome text := 'unchanged';
BEGIN
  IF p_email IS NULL AND p_phone IS NULL THEN
    RAISE EXCEPTION 'identify_contact needs an email or a phone number' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('lock_timeout', coalesce(v_options ->> 'lockTimeoutMs', '5000'), true);

  -- Junk identifiers are stored but never used to find or join customers. A request made
  -- only of junk finds just the contact holding exactly its values, so it stays idempotent.
  IF identify_is_junk(p_email, identify_junk_list(v_options, 'junkEmails'),
                      identify_junk_list(v_options, 'junkEmailPatterns')) THEN
    v_link_email := NULL;
  END IF;
  IF identify_is_junk(p_phone, identify_junk_list(v_options, 'junkPhones'),
                      identify_junk_list(v_options, 'junkPhonePatterns')) THEN
    v_link_phone := NULL;
  END IF;

  FOR v_key IN
    SELECT k.key FROM (
      SELECT hashtextextended('email:' || p_email, 0) AS key
       WHERE p_email IS NOT NULL AND (v_link_email IS NOT NULL OR v_link_phone IS NULL)
      UNION
      SELECT hashtextextended('phone:' || p_phone, 0)
       WHERE p_phone IS NOT NULL AND (v_link_phone IS NOT NULL OR v_link_email IS NULL)
    ) k ORDER BY k.key
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  IF v_link_email IS NULL AND v_link_phone IS NULL THEN
    v_seeds := ARRAY(SELECT c.id FROM contacts c
                      WHERE c.deleted_at IS NULL
                        AND c.email IS NOT DISTINCT FROM p_email
                        AND c.phone_number IS NOT DISTINCT FROM p_phone);
  END IF;

  v_wanted := identify_customer_keys(identify_component(v_link_email, v_link_phone, v_seeds, v_options));
  LOOP
    BEGIN
      FOREACH v_customer IN ARRAY v_wanted LOOP
        PERFORM pg_advisory_xact_lock(c_customer_lock_space, v_customer);
      END LOOP;
      v_members := identify_component(v_link_email, v_link_phone, v_seeds, v_options);
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
    INSERT INTO identity_events (request_id, kind, contact_id, new_primary_id)
    VALUES (v_request_id, 'created_primary', v_new_id, v_new_id);
    v_members := ARRAY[v_new_id];
    v_outcome := 'created';
  ELSE
    v_needs_insert :=
      (p_email IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM contacts c WHERE c.id = ANY (v_members) AND c.email = p_email))
      OR (p_phone IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM contacts c WHERE c.id = ANY (v_members) AND c.phone_number = p_phone));

    IF v_max_contacts IS NOT NULL THEN
      v_merging := (SELECT count(*) > 1 FROM contacts c
                     WHERE c.id = ANY (v_members) AND c.link_precedence = 'primary');
      IF (v_merging OR v_needs_insert)
         AND cardinality(v_members) + v_needs_insert::integer > v_max_contacts THEN
        RAISE EXCEPTION 'the customer would have % contacts, over the cap of %',
          cardinality(v_members) + v_needs_insert::integer, v_max_contacts
          USING ERRCODE = 'IDC01';
      END IF;
    END IF;

    SELECT s.primary_id, s.changed INTO v_primary, v_changed
      FROM identify_settle(v_members, v_request_id) s;
    IF v_changed > 0 THEN
      v_outcome := 'merged';
    END IF;
    IF v_needs_insert THEN
      INSERT INTO contacts AS c (email, phone_number, linked_id, link_precedence, created_at, updated_at)
      VALUES (p_email, p_phone, v_primary, 'secondary', clock_timestamp(), clock_timestamp())
      RETURNING c.id INTO v_new_id;
      INSERT INTO identity_events (request_id, kind, contact_id, new_primary_id)
      VALUES (v_request_id, 'created_secondary', v_new_id, v_primary);
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
--> statement-breakpoint

-- Settles every customer in the table: for data that did not come through identify_contact
-- (an import from the service identify replaced). Locks the table against concurrent
-- reconciliation while it works. Returns how many contacts changed.
CREATE FUNCTION identify_settle_all(p_request_id text, p_options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_contact record;
  v_members integer[];
  v_changed integer;
  v_total integer := 0;
BEGIN
  LOCK TABLE contacts IN SHARE ROW EXCLUSIVE MODE;
  CREATE TEMP TABLE IF NOT EXISTS identify_settled (id integer PRIMARY KEY) ON COMMIT DROP;
  FOR v_contact IN
    SELECT c.id, c.email, c.phone_number FROM contacts c
     WHERE c.deleted_at IS NULL ORDER BY c.created_at, c.id
  LOOP
    CONTINUE WHEN EXISTS (SELECT 1 FROM identify_settled s WHERE s.id = v_contact.id);
    v_members := identify_component(NULL, NULL, ARRAY[v_contact.id], p_options);
    INSERT INTO identify_settled SELECT unnest(v_members) ON CONFLICT DO NOTHING;
    SELECT s.changed INTO v_changed FROM identify_settle(v_members, p_request_id) s;
    v_total := v_total + v_changed;
  END LOOP;
  RETURN v_total;
END
$$;
