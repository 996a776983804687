-- Lock 2 of the locking design in identify_contact.sql, for a caller that already holds its
-- identifier locks: takes the customer locks of the customer the arguments reach (its primaries and its
-- oldest contact, the keys identify_contact locks), ascending; reads the customer again once they
-- are held; and if it grew while we waited, rolls back the sub-block, which releases those
-- customer locks but not the caller's identifier locks, and locks the new set instead.
-- Returns the customer's contact ids as read under its locks ('{}' when there is none).
--
-- p_options: the junk keys identify_customer_contacts reads, and maxContacts, the cap as
-- identify_contact applies it: every read stops after maxContacts + 1 contacts and raises
-- IDC01, so a customer over the cap costs about the cap's worth of reading, whatever its size
-- (absent = no cap: the whole customer is read).
--
-- identify_forget calls it. identify_contact has the same loop inline, written before this
-- function; the two must stay the same protocol, or an erasure and a request could deadlock.
CREATE OR REPLACE FUNCTION identify_lock_customer(p_email text, p_phone text, p_seed_ids integer[], p_options jsonb)
RETURNS integer[]
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  -- The customer lock space of identify_contact.sql (lib/db/sql-contract.ts).
  c_customer_lock_space CONSTANT integer := 1768383844;
  v_customer_key integer;
  v_keys_to_lock integer[];
  v_customer_keys integer[];
  v_members integer[];
  v_max_contacts integer := (p_options ->> 'maxContacts')::integer;
BEGIN
  -- The first pass reads without customer locks (nothing to lock yet, nothing to roll back).
  LOOP
    BEGIN
      FOREACH v_customer_key IN ARRAY coalesce(v_keys_to_lock, '{}') LOOP
        PERFORM pg_advisory_xact_lock(c_customer_lock_space, v_customer_key);
      END LOOP;
      SELECT coalesce(array_agg(m.id), '{}'),
             coalesce(array_agg(DISTINCT m.id ORDER BY m.id)
                        FILTER (WHERE m.linked_id IS NULL OR m.id = m.oldest), '{}')
        INTO v_members, v_customer_keys
        FROM (SELECT f.id, f.linked_id, first_value(f.id) OVER (ORDER BY f.created_at, f.id) AS oldest
                FROM identify_customer_contacts(p_email, p_phone, p_seed_ids, p_options, v_max_contacts) f) m;
      IF cardinality(v_members) > v_max_contacts THEN
        -- IDC01: customer over the cap (lib/db/sql-contract.ts); not caught here.
        RAISE EXCEPTION 'the customer has more than % contacts, the cap', v_max_contacts
          USING ERRCODE = 'IDC01';
      END IF;
      EXIT WHEN v_customer_keys <@ v_keys_to_lock;
      IF v_keys_to_lock IS NULL THEN
        v_keys_to_lock := v_customer_keys;
        CONTINUE;
      END IF;
      -- IDR01: the customer changed while we waited for its locks; caught right below.
      RAISE EXCEPTION USING ERRCODE = 'IDR01', MESSAGE = 'customer changed while waiting';
    EXCEPTION WHEN SQLSTATE 'IDR01' THEN
      v_keys_to_lock := v_customer_keys;
    END;
  END LOOP;
  RETURN v_members;
END
$$;
