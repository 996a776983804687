-- Erases a customer (GDPR art. 17, CCPA): every contact of the customer that the email, the
-- phone number or the contact id reaches (exactly one is given, normalized as lib/input.ts
-- does), plus the soft-deleted contacts that were part of it, together with those
-- contacts' identity events, in one statement. What survives is one erasures row: when, by
-- which request, which contact ids, how many contacts and events; never a value. Returns
-- that row's id (null when nothing was written), the erased contact ids, ascending, and the
-- number of events erased. lib/forget.ts calls it; `npm run forget` prints what it returns.
--
-- p_options, the options jsonb (lib/db/sql-contract.ts; every key optional):
--   requestId          text     recorded on the erasure row
--   lockTimeoutMs      integer  required: longest lock wait before SQLSTATE 55P03 (0 = forever);
--                               lib/forget.ts always sends it (DB_LOCK_TIMEOUT_MS's default,
--                               lib/config.ts, unless told otherwise)
--   dryRun             boolean  find, lock and count, but write nothing
--   maxContacts        integer  the cap, as identify_contact applies it: refuse (SQLSTATE IDC01,
--                               nothing written) a customer of more live contacts than this
--                               (absent = no cap: the operator asked to erase it whatever its size)
--   junkEmails, junkEmailPatterns, junkPhones, junkPhonePatterns   text[]   as identify_contact
--
-- Bounded work. With maxContacts, the customer read (identify_lock_customer: the one-hop read
-- or the walk, identify_customer_contacts) stops after maxContacts + 1 live contacts and raises IDC01, so
-- a customer grown huge costs an erasure, like a request, about the cap's worth of reading
-- before it is refused; `npm run forget` then names the flag that removes the cap.
--
-- Locks: exactly those of identify_contact's locked path and in its order (see
-- identify_contact.sql): ROW EXCLUSIVE on contacts before the first read (so an import
-- or a relink, EXCLUSIVE, never changes the customer between this read and the delete),
-- the identifier lock of the email or phone given, then the customer locks, taken and the
-- customer read under them by the routine identify_contact uses, identify_lock_customer (its
-- header has the protocol). Every request that could add to, merge into or relink this customer holds
-- one of those customer locks while it writes, so a request either finishes before the
-- erasure reads the customer (and is erased with it), or reads it again after the erasure
-- committed, finds nothing, and starts a brand-new customer, as a stranger would. None of
-- them holds back a lookup: identify_contact answers one without a lock, as the customer
-- stood before the erasure until it commits.
--
-- Soft-deleted contacts are invisible to identify_customer_contact_ids, but they carry the
-- person's values and may link to the customer (a foreign key would refuse the delete), so
-- the erasure takes, to a fixed point, every deleted contact that links to or is linked from
-- one it erases, or shares a non-junk email or phone number with one. That one lookup by
-- value is a sequential scan of the deleted rows (the indexes hold live rows only): fine
-- for a request that comes a few times a month, and it runs under this customer's locks only.
--
-- Junk values (identify_junk_list) belong to nobody: a junk email or phone cannot name a
-- customer (22023; erase by contact id instead), and other customers keep theirs.
--
-- Errors it raises: 22023 unless exactly one identifier is given, when it is junk, or
-- when lockTimeoutMs is missing;
-- IDC01 when the customer has more live contacts than maxContacts; 55000 when a live
-- contact outside the customer links to a contact being erased (left by older data;
-- identify_settle_all heals it), so another customer is never touched; 55P03 after
-- lockTimeoutMs.
CREATE OR REPLACE FUNCTION identify_forget(p_email text, p_phone text, p_id integer, p_options jsonb DEFAULT '{}')
RETURNS TABLE (
  erasure_id bigint,
  contact_ids integer[],
  event_count integer
)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
  v_options jsonb := coalesce(p_options, '{}');
  v_request_id text := coalesce(v_options ->> 'requestId', 'unknown');
  v_dry_run boolean := coalesce((v_options ->> 'dryRun')::boolean, false);
  v_junk_emails text[] := identify_junk_list(v_options, 'junkEmails');
  v_junk_email_patterns text[] := identify_junk_list(v_options, 'junkEmailPatterns');
  v_junk_phones text[] := identify_junk_list(v_options, 'junkPhones');
  v_junk_phone_patterns text[] := identify_junk_list(v_options, 'junkPhonePatterns');
  v_seeds integer[] := array_remove(ARRAY[p_id], NULL);
  v_lock_timeout_ms integer := (v_options ->> 'lockTimeoutMs')::integer;
  v_seqscan text;
  v_members integer[];
  v_erased integer[];
  v_more integer[];
  v_outsider integer;
  v_events integer;
  v_erasure_id bigint;
BEGIN
  IF num_nonnulls(p_email, p_phone, p_id) <> 1 THEN
    RAISE EXCEPTION 'identify_forget needs exactly one of an email, a phone number or a contact id'
      USING ERRCODE = '22023';
  END IF;
  -- The message never quotes the value: erasure output ends up in tickets.
  IF identify_is_junk(p_email, v_junk_emails, v_junk_email_patterns)
     OR identify_is_junk(p_phone, v_junk_phones, v_junk_phone_patterns) THEN
    RAISE EXCEPTION 'that identifier is a junk value, shared by many customers: erase by contact id'
      USING ERRCODE = '22023';
  END IF;
  IF v_lock_timeout_ms IS NULL THEN
    RAISE EXCEPTION 'identify_forget needs the lockTimeoutMs option' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('lock_timeout', v_lock_timeout_ms::text, true);
  LOCK TABLE contacts IN ROW EXCLUSIVE MODE;

  -- Lock 1, the identifier lock, keyed as identify_contact keys it.
  IF p_email IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('email:' || p_email, 0));
  ELSIF p_phone IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('phone:' || p_phone, 0));
  END IF;

  -- Lock 2, the customer locks, and the customer read under them: identify_lock_customer,
  -- the routine identify_contact calls too. No deadline; lock_timeout as set above. It runs
  -- under its caller's settings, and its reads are planned for enable_seqscan = off, as
  -- identify_contact runs them (its header says why); this function's own scan of deleted
  -- rows below wants the sequential scan, so the setting is restored after the call.
  v_seqscan := current_setting('enable_seqscan');
  PERFORM set_config('enable_seqscan', 'off', true);
  v_members := (identify_lock_customer(p_email, p_phone, p_email, p_phone, v_seeds, v_options,
                                       (v_options ->> 'maxContacts')::integer, NULL,
                                       v_lock_timeout_ms)).member_ids;
  PERFORM set_config('enable_seqscan', v_seqscan, true);

  IF cardinality(v_members) = 0 THEN
    RETURN QUERY SELECT NULL::bigint, '{}'::integer[], 0;
    RETURN;
  END IF;

  -- The soft-deleted contacts that were part of the customer, to a fixed point.
  v_erased := v_members;
  LOOP
    v_more := ARRAY(
      SELECT d.id FROM contacts d
       WHERE d.deleted_at IS NOT NULL
         AND d.id <> ALL (v_erased)
         AND (d.linked_id = ANY (v_erased)
              OR EXISTS (SELECT 1 FROM contacts e
                          WHERE e.id = ANY (v_erased)
                            AND (e.linked_id = d.id
                                 OR (e.email = d.email
                                     AND NOT identify_is_junk(d.email, v_junk_emails, v_junk_email_patterns))
                                 OR (e.phone_number = d.phone_number
                                     AND NOT identify_is_junk(d.phone_number, v_junk_phones, v_junk_phone_patterns))))));
    EXIT WHEN cardinality(v_more) = 0;
    v_erased := v_erased || v_more;
  END LOOP;
  v_erased := ARRAY(SELECT unnest(v_erased) ORDER BY 1);

  -- EXCEPT, not `c.id <> ALL (v_erased)`: against an array parameter (the generic plan) that
  -- compares each row with every element, which for a customer of tens of thousands of
  -- contacts took seconds; the hashed set difference takes a small fraction of that
  -- (bench/README.md, "Planned once").
  SELECT o.id INTO v_outsider
    FROM (SELECT c.id FROM contacts c WHERE c.linked_id = ANY (v_erased)
          EXCEPT SELECT unnest(v_erased)) o
   LIMIT 1;
  IF v_outsider IS NOT NULL THEN
    RAISE EXCEPTION 'contact % of another customer links to a contact being erased; settle the data first (identify_settle_all)', v_outsider
      USING ERRCODE = '55000';
  END IF;

  SELECT count(*) INTO v_events FROM identity_events e WHERE e.contact_id = ANY (v_erased);
  IF v_dry_run THEN
    RETURN QUERY SELECT NULL::bigint, v_erased, v_events;
    RETURN;
  END IF;

  -- The record comes first: it is what allows the events' delete (identity_events_refuse_change.sql).
  INSERT INTO erasures AS r (request_id, contact_ids, contact_count, event_count, transaction_id)
  VALUES (v_request_id, v_erased, cardinality(v_erased), v_events, txid_current())
  RETURNING r.id INTO v_erasure_id;
  DELETE FROM identity_events e WHERE e.contact_id = ANY (v_erased);
  -- One statement for all: the contacts' own foreign key (NO ACTION) is checked at its end,
  -- so it does not matter that a secondary links to a primary deleted before it.
  DELETE FROM contacts c WHERE c.id = ANY (v_erased);

  RETURN QUERY SELECT v_erasure_id, v_erased, v_events;
END
$$;
