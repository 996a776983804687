-- POST /identify in one call: lock, read, decide, write, record, and return the customer's
-- rows (oldest first, so the primary is row one). Arguments must already be normalized
-- (lib/input.ts). Outcomes: created | added_secondary | merged | unchanged.
--
-- Why inside Postgres: a serverless function is a network hop away from its database, so
-- every request is exactly one statement, and its locks live only while Postgres itself
-- works, never across that hop. A transaction alone would not be enough: under READ
-- COMMITTED two requests can both see "no match" and both insert, and two merges can reach
-- one customer through different identifiers and race on its primary. Hence the locks below,
-- all transaction-scoped advisory locks (safe behind a transaction-mode pooler such as Neon's).
--
-- p_options, the options jsonb (lib/db/sql-contract.ts; every key optional):
--   requestId          text     recorded on every identity event
--   lockTimeoutMs      integer  longest lock wait before SQLSTATE 55P03 (default 5000; 0 = forever)
--   deadlineMs         integer  give up with SQLSTATE 57014 once the statement has run this long
--                               (absent or 0 = no deadline; lib/identify.ts sends the client's
--                               query timeout, DB_QUERY_TIMEOUT_MS)
--   maxContacts        integer  the cap: refuse (SQLSTATE IDC01) any request that reaches a
--                               customer of more than this many live contacts, or would grow
--                               one past it (absent = no cap; lib/config.ts defaults it to 1000)
--   junkEmails, junkEmailPatterns, junkPhones, junkPhonePatterns   text[]   values that never link
--
-- Errors it raises: 22023 when both identifiers are null; IDC01, customer over the cap
-- (lib/identify.ts answers 409 customer_too_large); 55P03 after lockTimeoutMs; 57014 past
-- deadlineMs (both answered 503). IDR01, customer changed while waiting for its locks, is
-- caught inside and never leaves.
--
-- Bounded work per request. The answer is the whole customer, so a customer over the cap is
-- refused whole, lookups included: the search (identify_customer_contacts) stops at
-- maxContacts + 1 contacts and the request answers 409 at once, having read about
-- maxContacts contacts whatever the customer's size. With the cap, every request's work is
-- bounded by it.
--
-- The deadline is enforced by the function itself because nothing else can be: the client's
-- timeout only stops the client (PostgreSQL goes on working, holding its locks);
-- statement_timeout cannot be changed for the statement already running (SET inside it
-- arms nothing), and behind PgBouncer in transaction mode it cannot be sent as a startup
-- parameter or set per session either. So the deadline is statement_timestamp() + deadlineMs:
-- no lock wait is allowed longer than the time left, the search stops at it (checked per
-- step of its walk), and every customer lock checks it first, raising 57014 (query_canceled,
-- what statement_timeout raises; lib/errors.ts answers 503). A query thus ends within about
-- one step of its deadline, and its locks go with it.
--
-- Every statement is planned once per connection (plan_cache_mode = force_generic_plan,
-- and PL/pgSQL helpers rather than LANGUAGE sql): measured with pgbench on 2,000 customers
-- on PostgreSQL 15, a lookup took 2.95 ms of database time while each call re-planned its
-- array-parameter queries, and 0.42 ms planned once. The queries are index probes whatever
-- the parameters, so a generic plan loses nothing. And enable_seqscan = off: contacts are
-- found by id or through the partial indexes, so that a plan made on a small table without
-- statistics stays index probes at any size (identify_customer_contacts.sql).
CREATE OR REPLACE FUNCTION identify_contact(p_email text, p_phone text, p_options jsonb DEFAULT '{}')
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
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  -- Customer locks are two-key advisory locks (this space, a contact id). PostgreSQL keeps
  -- two-key and one-bigint advisory locks apart, so they never meet the identifier locks
  -- (one bigint hash each); the first key, a number this service reserved, keeps them apart
  -- from any other two-key user. The migration runner's session lock is a one-bigint key:
  -- at worst a request whose identifier hashes to it waits for a migration to finish.
  c_customer_lock_space CONSTANT integer := 1768383844;
  -- The largest customer the one-hop read serves (see the loop below).
  c_one_hop_max CONSTANT integer := 100;
  v_options jsonb := coalesce(p_options, '{}');
  v_request_id text := coalesce(v_options ->> 'requestId', 'unknown');
  v_max_contacts integer := (v_options ->> 'maxContacts')::integer;
  v_deadline_ms integer := nullif((v_options ->> 'deadlineMs')::integer, 0);
  v_deadline timestamptz := statement_timestamp() + v_deadline_ms * interval '1 millisecond';
  v_lock_timeout_ms integer := coalesce((v_options ->> 'lockTimeoutMs')::integer, 5000);
  -- lock_timeout as a pass of the loop below has set it (its sub-block's rollback undoes it).
  v_pass_lock_timeout_ms integer;
  v_time_left_ms integer;
  -- Four helper calls cost a request more than its lookups do: made only when there is junk.
  v_any_junk boolean := v_options ?| ARRAY['junkEmails', 'junkEmailPatterns', 'junkPhones', 'junkPhonePatterns'];
  v_junk_emails text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkEmails') END;
  v_junk_email_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkEmailPatterns') END;
  v_junk_phones text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkPhones') END;
  v_junk_phone_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkPhonePatterns') END;
  v_link_email text := p_email;
  v_link_phone text := p_phone;
  v_seeds integer[] := '{}';
  v_identifier_key bigint;
  v_customer_key integer;
  -- The customer keys this attempt locks, and the keys the customer has once they are held.
  v_keys_to_lock integer[];
  v_customer_keys integer[];
  -- The one-hop read: the key it read from, whether it is the whole customer, its oldest.
  v_key integer;
  v_closed boolean;
  v_oldest integer;
  -- From the read under the locks: the request's values already held, and canonical.
  v_has_email boolean;
  v_has_phone boolean;
  v_flat boolean;
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
  -- No lock wait may outlast the deadline (lock_timeout 0 waits forever).
  IF v_deadline_ms IS NOT NULL AND (v_lock_timeout_ms = 0 OR v_lock_timeout_ms > v_deadline_ms) THEN
    v_lock_timeout_ms := v_deadline_ms;
  END IF;
  PERFORM set_config('lock_timeout', v_lock_timeout_ms::text, true);

  -- Junk identifiers are stored but never used to find or join customers. A request made
  -- only of junk finds just the contact holding exactly its values, so it stays idempotent.
  IF (v_junk_emails IS NOT NULL OR v_junk_email_patterns IS NOT NULL)
     AND identify_is_junk(p_email, v_junk_emails, v_junk_email_patterns) THEN
    v_link_email := NULL;
  END IF;
  IF (v_junk_phones IS NOT NULL OR v_junk_phone_patterns IS NOT NULL)
     AND identify_is_junk(p_phone, v_junk_phones, v_junk_phone_patterns) THEN
    v_link_phone := NULL;
  END IF;

  -- Lock 1, identifier locks: one per linking identifier of the request (a junk-only request
  -- locks its values), in sorted order. Any request that could create or extend a customer
  -- with the same email or phone is serialized here, before it reads.
  FOR v_identifier_key IN
    SELECT k.key FROM (
      SELECT hashtextextended('email:' || p_email, 0) AS key
       WHERE p_email IS NOT NULL AND (v_link_email IS NOT NULL OR v_link_phone IS NULL)
      UNION
      SELECT hashtextextended('phone:' || p_phone, 0)
       WHERE p_phone IS NOT NULL AND (v_link_phone IS NOT NULL OR v_link_email IS NULL)
    ) k ORDER BY k.key
  LOOP
    PERFORM pg_advisory_xact_lock(v_identifier_key);
  END LOOP;

  -- A junk-only request is seeded with the contact holding exactly its values. coalesce, not
  -- IS NOT DISTINCT FROM, so that the unique index contacts_identity_live_key serves it: at
  -- 1,000,000 rows that is 0.04 ms instead of a walk over every contact without a phone.
  IF v_link_email IS NULL AND v_link_phone IS NULL THEN
    v_seeds := ARRAY(SELECT c.id FROM contacts c
                      WHERE c.deleted_at IS NULL
                        AND coalesce(c.email, '') = coalesce(p_email, '')
                        AND coalesce(c.phone_number, '') = coalesce(p_phone, ''));
  END IF;

  -- Lock 2, customer locks: one per key of the customer the identifiers reach (its contacts
  -- still marked primary, plus its oldest, which will be its primary once settled: so two
  -- requests that see the customer at different moments of a merge still share a key; once
  -- the customer is canonical this is exactly one key, its primary), ascending; then the
  -- customer is read under them. If it has keys not locked (the guess below missed them, or
  -- a concurrent merge grew it while we waited), the sub-block is rolled back, which releases
  -- the customer locks but keeps the identifier locks, and the keys read are locked instead.
  -- No transaction ever waits for a lock while holding a larger one, so concurrent merges
  -- cannot deadlock each other.
  --
  -- The first pass locks a guess made from the request's own identifiers: the primaries
  -- (linked_id, or the contact itself) of the live contacts holding them. For a canonical
  -- customer that is exactly its key, so the customer is read once, under its lock, as by the
  -- minimal implementation (bench/minimal); a merge to make, a deleted primary or a chain
  -- shows in that read, and the next pass locks what it found. The cap is checked on every
  -- read: a customer over it is refused after reading about the cap's worth of contacts. Each
  -- read is one statement, the one-hop read or the walk (identify_customer_contacts), which
  -- yields the customer's contacts, its keys, whether it holds the request's values, and
  -- whether it is canonical.
  v_keys_to_lock := ARRAY(
    SELECT coalesce(c.linked_id, c.id) FROM contacts c
     WHERE c.email = v_link_email AND c.deleted_at IS NULL
    UNION
    SELECT coalesce(c.linked_id, c.id) FROM contacts c
     WHERE c.phone_number = v_link_phone AND c.deleted_at IS NULL
    UNION
    SELECT coalesce(c.linked_id, c.id) FROM contacts c WHERE c.id = ANY (v_seeds)
    ORDER BY 1);
  -- Nobody holds the request's values: a new customer, with nothing to lock or walk. That
  -- read came after the identifier locks, which every request that could add a contact
  -- holding them takes, and an import locks the whole table, so it waits for this
  -- transaction, which has read it.
  IF cardinality(v_keys_to_lock) = 0 THEN
    v_members := '{}';
  ELSE LOOP
    BEGIN
      v_pass_lock_timeout_ms := v_lock_timeout_ms;
      FOREACH v_customer_key IN ARRAY v_keys_to_lock LOOP
        IF clock_timestamp() >= v_deadline THEN
          RAISE EXCEPTION 'identify: the statement ran past its deadline' USING ERRCODE = '57014';
        END IF;
        IF v_deadline_ms IS NOT NULL THEN
          -- Wait no longer than the time left, once that is shorter than lock_timeout as set.
          v_time_left_ms := 1 + floor(1000 * extract(epoch FROM v_deadline - clock_timestamp()));
          -- The deadline may pass between the check above and this line: a lock_timeout of
          -- 0 would wait forever, and a negative one is an error (22023).
          IF v_time_left_ms < 1 THEN
            RAISE EXCEPTION 'identify: the statement ran past its deadline' USING ERRCODE = '57014';
          END IF;
          IF v_time_left_ms < v_pass_lock_timeout_ms THEN
            v_pass_lock_timeout_ms := v_time_left_ms;
            PERFORM set_config('lock_timeout', v_pass_lock_timeout_ms::text, true);
          END IF;
        END IF;
        PERFORM pg_advisory_xact_lock(c_customer_lock_space, v_customer_key);
      END LOOP;
      -- The one-hop read, for a request that reaches one key: the contact it names, if live
      -- and primary, and the live contacts linked to it. That is the whole customer exactly
      -- when it is closed: a contact holding the request's linking value is among them, no
      -- live contact outside holds a value of theirs or the request's, and none links to one
      -- of them but the primary. Then the walk below would find exactly these contacts, and
      -- is skipped. Each probe is one index condition on a scalar (id, linked_id, email,
      -- phone_number), never `= ANY (array)`, which a plan made without statistics serves by
      -- reading a whole partial index. At most c_one_hop_max contacts: a larger customer is
      -- walked, which checks the deadline at every step; one over the cap is refused as read.
      v_closed := NULL;
      IF cardinality(v_keys_to_lock) = 1 AND cardinality(v_seeds) = 0 THEN
        v_key := v_keys_to_lock[1];
        WITH one_hop AS (
          (SELECT c.id, c.email, c.phone_number, c.created_at
             FROM contacts c
            WHERE c.id = v_key AND c.linked_id IS NULL AND coalesce(c.deleted_at IS NULL, false)
           UNION ALL
           SELECT c.id, c.email, c.phone_number, c.created_at
             FROM contacts c
            WHERE c.linked_id = v_key AND c.deleted_at IS NULL)
          LIMIT least(v_max_contacts, c_one_hop_max) + 1
        ), customer AS (
          SELECT coalesce(array_agg(h.id), '{}') AS ids,
                 array_agg(h.id) FILTER (WHERE h.id <> v_key) AS secondaries,
                 -- Each value once: the request's, then the contacts' others.
                 array_remove(ARRAY[v_link_email], NULL)
                   || array_agg(DISTINCT h.email)
                        FILTER (WHERE h.email IS NOT NULL AND h.email IS DISTINCT FROM v_link_email) AS emails,
                 array_remove(ARRAY[v_link_phone], NULL)
                   || array_agg(DISTINCT h.phone_number)
                        FILTER (WHERE h.phone_number IS NOT NULL AND h.phone_number IS DISTINCT FROM v_link_phone) AS phones,
                 (array_agg(h.id ORDER BY h.created_at, h.id))[1] AS oldest,
                 coalesce(bool_or(h.id = v_key), false) AS has_primary,
                 coalesce(bool_or(h.email = v_link_email OR h.phone_number = v_link_phone), false) AS reached,
                 coalesce(bool_or(h.email = p_email), false) AS has_email,
                 coalesce(bool_or(h.phone_number = p_phone), false) AS has_phone
            FROM one_hop h)
        SELECT k.ids, k.oldest, k.has_email, k.has_phone,
               k.has_primary AND k.reached AND cardinality(k.ids) <= least(v_max_contacts, c_one_hop_max)
               AND NOT (SELECT coalesce(bool_or(EXISTS (
                              SELECT FROM contacts c
                               WHERE c.email = v AND c.deleted_at IS NULL
                                 AND c.id <> v_key AND c.linked_id IS DISTINCT FROM v_key)), false)
                          FROM unnest(k.emails) v)
               AND NOT (SELECT coalesce(bool_or(EXISTS (
                              SELECT FROM contacts c
                               WHERE c.phone_number = v AND c.deleted_at IS NULL
                                 AND c.id <> v_key AND c.linked_id IS DISTINCT FROM v_key)), false)
                          FROM unnest(k.phones) v)
               AND NOT (SELECT coalesce(bool_or(EXISTS (
                              SELECT FROM contacts c
                               WHERE c.linked_id = v AND c.deleted_at IS NULL)), false)
                          FROM unnest(k.secondaries) v)
          INTO v_members, v_oldest, v_has_email, v_has_phone, v_closed
          FROM customer k;
      END IF;
      IF coalesce(v_closed, false) THEN
        -- Canonical when its primary is its oldest; otherwise settling makes the oldest the
        -- primary, so both are keys.
        v_flat := v_oldest = v_key;
        v_customer_keys := CASE WHEN v_flat THEN ARRAY[v_key]
                                ELSE ARRAY[least(v_key, v_oldest), greatest(v_key, v_oldest)] END;
      ELSIF NOT coalesce(v_closed IS NOT NULL AND cardinality(v_members) > v_max_contacts, false) THEN
        -- (A one-hop read over the cap is refused below without walking.)
        SELECT coalesce(array_agg(m.id), '{}'),
               coalesce(array_agg(DISTINCT m.id ORDER BY m.id)
                          FILTER (WHERE m.linked_id IS NULL OR m.id = m.oldest), '{}'),
               coalesce(bool_or(m.email = p_email), false),
               coalesce(bool_or(m.phone_number = p_phone), false),
               count(*) FILTER (WHERE CASE WHEN m.id = m.oldest THEN m.linked_id IS NOT NULL
                                           ELSE m.linked_id IS DISTINCT FROM m.oldest END) = 0
          INTO v_members, v_customer_keys, v_has_email, v_has_phone, v_flat
          FROM (SELECT f.*, first_value(f.id) OVER (ORDER BY f.created_at, f.id) AS oldest
                  FROM identify_customer_contacts(v_link_email, v_link_phone, v_seeds, v_options,
                                                  v_max_contacts, v_deadline) f) m;
      END IF;
      IF cardinality(v_members) > v_max_contacts THEN
        -- IDC01: customer over the cap; lib/identify.ts answers 409 customer_too_large.
        RAISE EXCEPTION 'the customer has more than % contacts, the cap', v_max_contacts
          USING ERRCODE = 'IDC01';
      END IF;
      EXIT WHEN v_customer_keys <@ v_keys_to_lock;
      -- IDR01: the customer changed while we waited for its locks; caught right below.
      RAISE EXCEPTION USING ERRCODE = 'IDR01', MESSAGE = 'customer changed while waiting';
    EXCEPTION WHEN SQLSTATE 'IDR01' THEN
      v_keys_to_lock := v_customer_keys;
    END;
  END LOOP;
  END IF;

  -- Then settle and write. Timestamps come from clock_timestamp() after the locks, so
  -- creation order matches lock order.
  IF cardinality(v_members) = 0 THEN
    INSERT INTO contacts AS c (email, phone_number, link_precedence, created_at, updated_at)
    VALUES (p_email, p_phone, 'primary', clock_timestamp(), clock_timestamp())
    RETURNING c.id INTO v_new_id;
    INSERT INTO identity_events (request_id, kind, contact_id, new_primary_id)
    VALUES (v_request_id, 'created_primary', v_new_id, v_new_id);
    v_members := ARRAY[v_new_id];
    v_outcome := 'created';
  ELSE
    v_needs_insert := (p_email IS NOT NULL AND NOT v_has_email)
                      OR (p_phone IS NOT NULL AND NOT v_has_phone);

    -- The cap is checked under the customer locks, so concurrent requests cannot overshoot it.
    IF v_max_contacts IS NOT NULL THEN
      v_merging := cardinality(v_customer_keys) > 1;
      IF (v_merging OR v_needs_insert)
         AND cardinality(v_members) + v_needs_insert::integer > v_max_contacts THEN
        -- IDC01: customer over the cap; lib/identify.ts answers 409 customer_too_large.
        RAISE EXCEPTION 'the customer would have % contacts, over the cap of %',
          cardinality(v_members) + v_needs_insert::integer, v_max_contacts
          USING ERRCODE = 'IDC01';
      END IF;
    END IF;

    -- Settle only when needed: a lookup of a canonical customer (one key, the primary,
    -- and every other contact pointing straight at it) writes nothing and skips the work.
    IF cardinality(v_customer_keys) = 1 AND v_flat THEN
      v_primary := v_customer_keys[1];
    ELSE
      SELECT s.primary_id, s.changed INTO v_primary, v_changed
        FROM identify_settle(v_members, v_request_id) s;
      IF v_changed > 0 THEN
        v_outcome := 'merged';
      END IF;
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
