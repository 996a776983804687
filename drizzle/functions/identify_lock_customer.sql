-- Lock 2 of the locking design (identify_contact.sql has lock 1 and why there are locks at
-- all): the customer locks, and the read of the customer under them. This is the only place
-- that takes a customer lock or names their lock space; identify_contact (POST /identify) and
-- identify_forget (erasure) both call it, for an erasure and a request must lock a customer
-- the same way, in the same order, or they could deadlock. The caller already holds its
-- identifier locks (and ROW EXCLUSIVE on contacts) and has set lock_timeout. Lookups that
-- write nothing never come here: identify_contact answers them without a lock (its path A).
--
-- Customer locks are two-key advisory locks, (lock space, contact id), transaction-scoped.
-- PostgreSQL keeps two-key and one-bigint advisory locks apart, so they never meet the
-- identifier locks (one bigint hash each) nor the migrations' lock (lib/db/migrate.ts, also
-- one bigint, taken inside the migration's transaction); the first key, a number this
-- service reserved, keeps them apart from any other two-key user.
--
-- The keys of a customer are its contacts still marked primary, plus its oldest contact,
-- which will be its primary once settled: so two transactions that see the customer at
-- different moments of a merge still share a key. Once the customer is canonical this is
-- exactly one key, its primary. The protocol:
--   1. guess the keys from the arguments: the primaries (linked_id, or the contact itself)
--      of the live contacts holding the linking email or phone, and of the live seeds;
--   2. lock them, ascending, each wait bounded by lock_timeout and by the time left before
--      p_deadline;
--   3. read the customer under them (below);
--   4. if it has keys not locked (the guess missed them, or a concurrent merge grew it while
--      we waited), roll back the sub-block (IDR01), which releases the customer locks but not
--      the caller's identifier locks, and go to 2 with the keys read.
-- No transaction ever waits for a lock while holding a larger one, so concurrent requests and
-- erasures cannot deadlock each other. For a canonical customer the guess is exactly its key,
-- so it is read once, under its lock, as by the minimal implementation (bench/minimal).
--
-- The read, one statement per pass:
--   - the one-hop read (the fast path), for a guess of one key and no seeds: the contact the
--     key names, if live and primary, and the live contacts linked to it. That is the whole
--     customer exactly when it is closed: a contact holding a linking value is among them, no
--     live contact outside holds a value of theirs or the request's, and none links to one of
--     them but the primary. Then the walk would find exactly these contacts (test/suites/
--     lock-customer.ts proves it case by case). Each probe is one index condition on a scalar
--     (id, linked_id, email, phone_number), never `= ANY (array)`, which a plan made without
--     statistics serves by reading a whole partial index. At most c_one_hop_max contacts: a
--     larger customer is walked, which checks the deadline at every step.
--   - otherwise, or when p_walk forces it, the walk (identify_customer_contacts): a merge, a
--     chain, a split or deleted primary, seeds, a large customer.
-- The cap is checked on every read: the read stops after p_max_contacts + 1 contacts and a
-- customer over it raises IDC01 (not caught here), having read about the cap's worth of
-- contacts whatever its size (p_max_contacts NULL = no cap).
--
-- Deadline: p_deadline (NULL = none) is the caller's statement_timestamp() + deadlineMs. Past
-- it, 57014 (query_canceled, as statement_timeout raises); no lock wait is allowed longer
-- than the time left (lock_timeout is lowered to it once it is shorter than
-- p_lock_timeout_ms, the caller's setting, 0 = forever; the sub-block's rollback undoes
-- that), and the walk stops at it.
--
-- Arguments: p_email, p_phone the request's values (has_email, has_phone say whether the
-- customer holds them); p_link_email, p_link_phone the values that link (junk removed);
-- p_seed_ids contacts the customer must include; p_options the junk lists, for the walk;
-- p_walk true reads by the walk even when the one-hop read would serve (the tests compare
-- the two).
--
-- Returns, as read under the customer's locks: member_ids, its live contacts' ids ('{}' when
-- the arguments reach nobody: no lock is taken then, and the other fields are NULL); keys, the customer keys it holds,
-- ascending; flat, whether it is canonical (every contact but the oldest links straight to
-- the oldest, which is primary); has_email, has_phone; walked, whether the walk read it; and
-- member_rows, its contacts oldest first when the one-hop read served (NULL after a walk), so
-- a lookup answers without reading them again.
--
-- No SET clauses, on purpose: a function with them costs every call a save and restore of
-- the settings, and this one is on every request's path. It runs under its callers',
-- which both set plan_cache_mode = force_generic_plan and enable_seqscan = off (why: see
-- identify_contact.sql and identify_customer_contacts.sql).
CREATE OR REPLACE FUNCTION identify_lock_customer(
  p_email text,
  p_phone text,
  p_link_email text,
  p_link_phone text,
  p_seed_ids integer[],
  p_options jsonb,
  p_max_contacts integer,
  p_deadline timestamptz,
  p_lock_timeout_ms integer,
  p_walk boolean DEFAULT false,
  OUT member_ids integer[],
  OUT keys integer[],
  OUT flat boolean,
  OUT has_email boolean,
  OUT has_phone boolean,
  OUT walked boolean,
  OUT member_rows contacts[]
)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  -- The customer lock space: the first key of every customer lock.
  c_customer_lock_space CONSTANT integer := 1768383844;
  -- The largest customer the one-hop read serves.
  c_one_hop_max CONSTANT integer := 100;
  v_keys_to_lock integer[];
  v_key integer;
  v_time_left_ms integer;
  v_ignored boolean;
  v_closed boolean;
  v_oldest integer;
BEGIN
  -- 1. The guess. Most requests have no seeds: their query has no seed branch.
  IF coalesce(cardinality(p_seed_ids), 0) = 0 THEN
    v_keys_to_lock := ARRAY(
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.email = p_link_email AND c.deleted_at IS NULL
      UNION
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.phone_number = p_link_phone AND c.deleted_at IS NULL
      ORDER BY 1);
  ELSE
    v_keys_to_lock := ARRAY(
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.email = p_link_email AND c.deleted_at IS NULL
      UNION
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.phone_number = p_link_phone AND c.deleted_at IS NULL
      UNION
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.id = ANY (p_seed_ids) AND coalesce(c.deleted_at IS NULL, false)
      ORDER BY 1);
  END IF;
  -- Nobody holds the values: no customer, nothing to lock or read. That read came after the
  -- caller's identifier locks, which every request that could add a contact holding them
  -- takes, and after its ROW EXCLUSIVE lock on contacts, so an import (EXCLUSIVE) waits for
  -- this transaction.
  -- (The new-contact path: only member_ids is set, the rest stays NULL.)
  IF cardinality(v_keys_to_lock) = 0 THEN
    member_ids := '{}';
    RETURN;
  END IF;

  LOOP
    BEGIN
      -- 2. The locks, ascending. Plain assignments, not PERFORM: an expression without a
      -- query is evaluated in place, a PERFORM is a query of its own.
      FOREACH v_key IN ARRAY v_keys_to_lock LOOP
        IF p_deadline IS NOT NULL THEN
          v_time_left_ms := 1 + floor(1000 * extract(epoch FROM p_deadline - clock_timestamp()));
          -- A lock_timeout of 0 would wait forever, and a negative one is an error (22023).
          IF v_time_left_ms < 1 THEN
            RAISE EXCEPTION 'identify: the statement ran past its deadline' USING ERRCODE = '57014';
          END IF;
          IF p_lock_timeout_ms = 0 OR v_time_left_ms < p_lock_timeout_ms THEN
            v_ignored := set_config('lock_timeout', v_time_left_ms::text, true) IS NULL;
          END IF;
        END IF;
        v_ignored := pg_advisory_xact_lock(c_customer_lock_space, v_key) IS NULL;
      END LOOP;

      -- 3. The read: the one-hop read when it can serve, else the walk.
      v_closed := NULL;
      member_rows := NULL;
      IF NOT p_walk AND cardinality(v_keys_to_lock) = 1 AND coalesce(cardinality(p_seed_ids), 0) = 0 THEN
        v_key := v_keys_to_lock[1];
        WITH one_hop AS (
          (SELECT c AS r, c.id, c.email, c.phone_number, c.created_at
             FROM contacts c
            WHERE c.id = v_key AND c.linked_id IS NULL AND coalesce(c.deleted_at IS NULL, false)
           UNION ALL
           SELECT c, c.id, c.email, c.phone_number, c.created_at
             FROM contacts c
            WHERE c.linked_id = v_key AND c.deleted_at IS NULL)
          LIMIT least(p_max_contacts, c_one_hop_max) + 1
        ), customer AS (
          SELECT coalesce(array_agg(h.id), '{}') AS ids,
                 array_agg(h.r ORDER BY h.created_at, h.id) AS contact_rows,
                 array_agg(h.id) FILTER (WHERE h.id <> v_key) AS secondaries,
                 -- Each value once: the request's, then the contacts' others.
                 array_remove(ARRAY[p_link_email], NULL)
                   || array_agg(DISTINCT h.email)
                        FILTER (WHERE h.email IS NOT NULL AND h.email IS DISTINCT FROM p_link_email) AS emails,
                 array_remove(ARRAY[p_link_phone], NULL)
                   || array_agg(DISTINCT h.phone_number)
                        FILTER (WHERE h.phone_number IS NOT NULL AND h.phone_number IS DISTINCT FROM p_link_phone) AS phones,
                 coalesce(bool_or(h.id = v_key), false) AS has_primary,
                 coalesce(bool_or(h.email = p_link_email OR h.phone_number = p_link_phone), false) AS reached,
                 coalesce(bool_or(h.email = p_email), false) AS has_email,
                 coalesce(bool_or(h.phone_number = p_phone), false) AS has_phone
            FROM one_hop h)
        SELECT k.ids, k.contact_rows, (k.contact_rows[1]).id, k.has_email, k.has_phone,
               k.has_primary AND k.reached AND cardinality(k.ids) <= least(p_max_contacts, c_one_hop_max)
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
          INTO member_ids, member_rows, v_oldest, has_email, has_phone, v_closed
          FROM customer k;
      END IF;
      walked := NOT coalesce(v_closed, false);
      IF NOT walked THEN
        -- Canonical when its primary is its oldest; otherwise settling makes the oldest the
        -- primary, so both are keys.
        flat := v_oldest = v_key;
        keys := CASE WHEN flat THEN ARRAY[v_key]
                     ELSE ARRAY[least(v_key, v_oldest), greatest(v_key, v_oldest)] END;
      ELSIF v_closed IS NOT NULL AND cardinality(member_ids) > p_max_contacts THEN
        -- Its primary alone has more live secondaries than the cap: refused below, unwalked.
        walked := false;
        member_rows := NULL;
      ELSE
        member_rows := NULL;
        SELECT coalesce(array_agg(m.id), '{}'),
               coalesce(array_agg(DISTINCT m.id ORDER BY m.id)
                          FILTER (WHERE m.linked_id IS NULL OR m.id = m.oldest), '{}'),
               coalesce(bool_or(m.email = p_email), false),
               coalesce(bool_or(m.phone_number = p_phone), false),
               count(*) FILTER (WHERE CASE WHEN m.id = m.oldest THEN m.linked_id IS NOT NULL
                                           ELSE m.linked_id IS DISTINCT FROM m.oldest END) = 0
          INTO member_ids, keys, has_email, has_phone, flat
          FROM (SELECT f.*, first_value(f.id) OVER (ORDER BY f.created_at, f.id) AS oldest
                  FROM identify_customer_contacts(p_link_email, p_link_phone, p_seed_ids, p_options,
                                                  p_max_contacts, p_deadline) f) m;
      END IF;
      IF cardinality(member_ids) > p_max_contacts THEN
        -- IDC01: customer over the cap (lib/db/sql-contract.ts); not caught here.
        RAISE EXCEPTION 'the customer has more than % contacts, the cap', p_max_contacts
          USING ERRCODE = 'IDC01';
      END IF;
      -- 4. Done when every key it has is held; else let go and lock what was read.
      EXIT WHEN keys <@ v_keys_to_lock;
      -- IDR01: the customer changed while we waited for its locks; caught right below.
      RAISE EXCEPTION USING ERRCODE = 'IDR01', MESSAGE = 'customer changed while waiting';
    EXCEPTION WHEN SQLSTATE 'IDR01' THEN
      v_keys_to_lock := keys;
    END;
  END LOOP;
END
$$;
