-- POST /identify in one call: lock, read, decide, write, record, and return the customer's
-- rows (oldest first, so the primary is row one). Arguments must already be normalized
-- (lib/input.ts). Outcomes: created | added_secondary | merged | unchanged.
--
-- Why inside Postgres: a serverless function is a network hop away from its database, so
-- every request is exactly one statement, and its locks live only while Postgres itself
-- works, never across that hop.
--
-- Two paths, in this order:
--
-- A. The lock-free lookup. Most requests bring an email and phone the customer already has,
-- and write nothing. They are answered by ONE query, with no lock but the table's ACCESS
-- SHARE (which only ACCESS EXCLUSIVE blocks, and no writer takes that), so a lookup never
-- waits for a writer: not for a request, an erasure or an import. Why its answer is right:
--   1. One snapshot. Under READ COMMITTED every statement takes a new snapshot, so two
--      statements could see two different states (a merge committing in between) and
--      stitch an answer that never existed. The read is one query: every row it looks at
--      comes from one snapshot, a state in which some set of transactions had committed,
--      each whole. That state existed at the instant the snapshot was taken, which lies
--      inside the request's window.
--   2. What the query proves from its own rows, in that state. The live contacts holding
--      the request's linking values all name one primary key k (contact k if it is primary,
--      else its linked_id); contact k is live and primary; the customer read is k and the
--      live contacts linked to k (at most c_read_max of them, and within the cap); k is the
--      oldest of them; every value the request brings (junk ones too) is held by one of
--      them; and it is closed: no live contact outside holds one of its values that is not
--      junk (the request's own were read as holders; each other value is one index probe),
--      and none links to one of its secondaries (one probe each). Then the walk (path B)
--      would find exactly these contacts, one key, flat, nothing to insert: path B, run at
--      that instant, would have written nothing and answered exactly these rows. The answer
--      is the customer as it stood at that instant, which is what linearizability asks of
--      a request that writes nothing (test/suites/storm.ts checks every answer of its
--      storms against a model; test/suites/sequences.ts every answer of random sequences).
--   3. Nothing else is assumed. Data that is not canonical (a chain, two primaries sharing
--      a value, a deleted primary, a primary newer than a secondary, a row planted by hand)
--      fails the proof wherever it touches the customer, and the request goes on to path B,
--      which walks, settles and answers the customer whole. Canonical form is what makes
--      the proof succeed, and so what makes lookups cheap: every customer flat, its primary
--      its oldest live contact, no value that is not junk carried by live contacts of two
--      customers. Every writer keeps it, each under locks that serialize it with every
--      other writer of the customer: requests (path B: identifier locks, customer locks,
--      settle), erasures (identify_forget: the same locks, the whole customer goes), imports
--      and relinking (EXCLUSIVE on contacts, then every customer they touch settled).
--      lib/db/invariants.ts checks it after every concurrent test and benchmark section.
--   A request that fails the proof (something new, a merge, a settle, no match, only junk)
--   goes on to path B in the same statement: one statement per request still.
--
-- B. The locked path: read, decide and write under locks. A transaction alone would not be
-- enough: under READ COMMITTED two requests can both see "no match" and both insert, and
-- two merges can reach one customer through different identifiers and race on its primary.
-- Hence, all transaction-scoped (safe behind a transaction-mode pooler such as Neon's):
-- lock 0, ROW EXCLUSIVE on contacts, which every writer takes before it reads (a plain
-- INSERT or UPDATE would take it only at its write, after a read that an import committing
-- meanwhile, under EXCLUSIVE, had made stale); lock 1, the identifier locks, here; lock 2,
-- the customer locks, in identify_lock_customer, the one routine that takes them, which
-- identify_forget calls too.
--
-- p_options, the options jsonb (lib/db/sql-contract.ts; every key optional):
--   requestId          text     recorded on every identity event
--   lockTimeoutMs      integer  required: longest lock wait before SQLSTATE 55P03 (0 = forever);
--                               lib/identify.ts always sends DB_LOCK_TIMEOUT_MS, whose default
--                               lib/config.ts holds
--   deadlineMs         integer  give up with SQLSTATE 57014 once the statement has run this long
--                               (absent or 0 = no deadline; lib/identify.ts sends the client's
--                               query timeout, DB_QUERY_TIMEOUT_MS)
--   maxContacts        integer  the cap: refuse (SQLSTATE IDC01) any request that reaches a
--                               customer of more than this many live contacts, or would grow
--                               one past it (absent = no cap; lib/config.ts defaults it to 1000)
--   junkEmails, junkEmailPatterns, junkPhones, junkPhonePatterns   text[]   values that never link
--
-- Errors it raises: 22023 when both identifiers are null, or lockTimeoutMs is missing; IDC01, customer over the cap
-- (lib/errors.ts answers 409 customer_too_large); 55P03 after lockTimeoutMs; 57014 past
-- deadlineMs (both answered 503). IDR01, customer changed while waiting for its locks, is
-- caught inside (identify_lock_customer) and never leaves.
--
-- Bounded work per request. The answer is the whole customer, so a customer over the cap is
-- refused whole, lookups included: the read of the customer (identify_lock_customer: the
-- one-hop read, or the walk, identify_customer_contacts) stops at maxContacts + 1 contacts and the request answers 409 at once, having read about
-- maxContacts contacts whatever the customer's size. With the cap, every request's work is
-- bounded by it.
--
-- The deadline is enforced by the function itself because nothing else can be: the client's
-- timeout only stops the client (PostgreSQL goes on working, holding its locks);
-- statement_timeout cannot be changed for the statement already running (SET inside it
-- arms nothing), and behind PgBouncer in transaction mode it cannot be sent as a startup
-- parameter or set per session either. So the deadline is statement_timestamp() + deadlineMs:
-- no lock wait is allowed longer than the time left, the walk stops at it (checked per
-- step), and every customer lock (identify_lock_customer) checks it first, raising 57014 (query_canceled,
-- what statement_timeout raises; lib/errors.ts answers 503). A query thus ends within about
-- one step of its deadline, and its locks go with it.
--
-- Every statement is planned once per connection (plan_cache_mode = force_generic_plan,
-- and PL/pgSQL helpers rather than LANGUAGE sql): re-planning the array-parameter queries
-- on every call cost several times the whole call (bench/README.md, "Planned once"). The
-- queries are index probes whatever the parameters, so a generic plan loses nothing. And enable_seqscan = off: contacts are
-- found by id or through the partial indexes, so that a plan made on a small table without
-- statistics stays index probes at any size (identify_customer_contacts.sql). Both settings
-- hold for identify_lock_customer too, which has no SET clauses of its own.
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
  v_options jsonb := coalesce(p_options, '{}');
  v_request_id text := coalesce(v_options ->> 'requestId', 'unknown');
  v_max_contacts integer := (v_options ->> 'maxContacts')::integer;
  v_deadline_ms integer := nullif((v_options ->> 'deadlineMs')::integer, 0);
  v_deadline timestamptz := statement_timestamp() + v_deadline_ms * interval '1 millisecond';
  v_lock_timeout_ms integer := (v_options ->> 'lockTimeoutMs')::integer;
  -- Four helper calls cost a request more than its lookups do: made only when there is junk.
  v_any_junk boolean := v_options ?| ARRAY['junkEmails', 'junkEmailPatterns', 'junkPhones', 'junkPhonePatterns'];
  v_junk_emails text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkEmails') END;
  v_junk_email_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkEmailPatterns') END;
  v_junk_phones text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkPhones') END;
  v_junk_phone_patterns text[] := CASE WHEN v_any_junk THEN identify_junk_list(v_options, 'junkPhonePatterns') END;
  v_link_email text := p_email;
  v_link_phone text := p_phone;
  v_seeds integer[] := '{}';
  v_email_key bigint;
  v_phone_key bigint;
  v_ignored boolean;
  -- The customer as identify_lock_customer read it under its locks.
  v_customer record;
  v_members integer[];
  v_primary integer;
  v_changed integer;
  v_new_id integer;
  v_new_created_at timestamptz;
  v_needs_insert boolean;
  v_merging boolean;
  v_outcome text := 'unchanged';
  -- The largest customer path A answers; a larger one goes to path B, whose walk checks the
  -- deadline at every step.
  c_read_max CONSTANT integer := 100;
BEGIN
  IF p_email IS NULL AND p_phone IS NULL THEN
    RAISE EXCEPTION 'identify_contact needs an email or a phone number' USING ERRCODE = '22023';
  END IF;
  IF v_lock_timeout_ms IS NULL THEN
    RAISE EXCEPTION 'identify_contact needs the lockTimeoutMs option' USING ERRCODE = '22023';
  END IF;
  -- No lock wait may outlast the deadline (lock_timeout 0 waits forever). Set before the
  -- first read, path A's too: only ACCESS EXCLUSIVE (a migration's ALTER TABLE) blocks it,
  -- and that wait is bounded as well. Assignments rather than PERFORM here and below: an
  -- expression without a query is evaluated in place.
  IF v_deadline_ms IS NOT NULL AND (v_lock_timeout_ms = 0 OR v_lock_timeout_ms > v_deadline_ms) THEN
    v_lock_timeout_ms := v_deadline_ms;
  END IF;
  v_ignored := set_config('lock_timeout', v_lock_timeout_ms::text, true) IS NULL;

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

  -- Path A, the lock-free lookup (the header argues it): one query, so one snapshot. It
  -- returns the customer's rows, oldest first, only when they prove the answer; otherwise
  -- no row, and the request goes on to path B. Each probe is one index condition on a
  -- scalar (email, phone_number, id, linked_id), as a plan made without statistics serves
  -- well at any size.
  RETURN QUERY
    WITH holder AS (
      SELECT coalesce(c.linked_id, c.id) AS k FROM contacts c
       WHERE c.email = v_link_email AND c.deleted_at IS NULL
      UNION ALL
      SELECT coalesce(c.linked_id, c.id) FROM contacts c
       WHERE c.phone_number = v_link_phone AND c.deleted_at IS NULL
    ), customer_key AS (
      -- One row exactly when every holder names the same primary.
      SELECT min(h.k) AS k FROM holder h HAVING min(h.k) = max(h.k)
    ), members AS (
      (SELECT c.id, c.email, c.phone_number, c.link_precedence, c.linked_id, c.created_at
         FROM contacts c
        WHERE c.id = (SELECT ck.k FROM customer_key ck)
          AND c.linked_id IS NULL AND coalesce(c.deleted_at IS NULL, false)
       UNION ALL
       SELECT c.id, c.email, c.phone_number, c.link_precedence, c.linked_id, c.created_at
         FROM contacts c
        WHERE c.linked_id = (SELECT ck.k FROM customer_key ck) AND c.deleted_at IS NULL)
      LIMIT least(v_max_contacts, c_read_max) + 1
    ), proof AS (
      -- In the order that fails soonest: a request that brings something new (or finds
      -- nobody) stops at the first line, before any probe of the closure.
      SELECT (p_email IS NULL OR coalesce(bool_or(m.email = p_email), false))
             AND (p_phone IS NULL OR coalesce(bool_or(m.phone_number = p_phone), false))
             AND count(*) <= least(v_max_contacts, c_read_max)
             -- The primary is there, and it is the oldest: the first in creation order.
             AND (array_agg(m.id ORDER BY m.created_at, m.id))[1]
                   = (array_agg(m.id) FILTER (WHERE m.linked_id IS NULL))[1]
             -- Closed: no live contact outside holds one of its values (those the request
             -- brought were read above, as holders), and none links to a secondary.
             AND NOT EXISTS (
                   SELECT FROM members m JOIN contacts c ON c.email = m.email
                    WHERE c.deleted_at IS NULL AND m.email IS DISTINCT FROM v_link_email
                      AND coalesce(c.linked_id, c.id) <> (SELECT ck.k FROM customer_key ck)
                      AND NOT (v_any_junk AND coalesce(identify_is_junk(m.email, v_junk_emails,
                                                                         v_junk_email_patterns), false)))
             AND NOT EXISTS (
                   SELECT FROM members m JOIN contacts c ON c.phone_number = m.phone_number
                    WHERE c.deleted_at IS NULL AND m.phone_number IS DISTINCT FROM v_link_phone
                      AND coalesce(c.linked_id, c.id) <> (SELECT ck.k FROM customer_key ck)
                      AND NOT (v_any_junk AND coalesce(identify_is_junk(m.phone_number, v_junk_phones,
                                                                         v_junk_phone_patterns), false)))
             AND NOT EXISTS (
                   SELECT FROM members m JOIN contacts c ON c.linked_id = m.id
                    WHERE c.deleted_at IS NULL AND m.linked_id IS NOT NULL) AS proven
        FROM members m
    )
    SELECT 'unchanged'::text, m.id, m.email, m.phone_number, m.link_precedence, m.linked_id,
           m.created_at
      FROM members m
     WHERE (SELECT p.proven FROM proof p)
     ORDER BY m.created_at, m.id;
  IF FOUND THEN
    RETURN;
  END IF;

  -- Path B. Lock 0: ROW EXCLUSIVE on contacts before the first read, so that an import or
  -- a relink (EXCLUSIVE, held to its commit) either ends before this request reads, or
  -- waits for it to commit: it never changes the table between this request's read and
  -- its write. Bounded by lock_timeout like every wait here.
  LOCK TABLE contacts IN ROW EXCLUSIVE MODE;

  -- Lock 1, identifier locks: one per linking identifier of the request (a junk-only request
  -- locks its values), one bigint each, in ascending order. Any request that could create or
  -- extend a customer with the same email or phone is serialized here, before it reads.
  IF p_email IS NOT NULL AND (v_link_email IS NOT NULL OR v_link_phone IS NULL) THEN
    v_email_key := hashtextextended('email:' || p_email, 0);
  END IF;
  IF p_phone IS NOT NULL AND (v_link_phone IS NOT NULL OR v_link_email IS NULL) THEN
    v_phone_key := hashtextextended('phone:' || p_phone, 0);
  END IF;
  -- (least and greatest skip a NULL; two equal keys are one lock.)
  v_ignored := pg_advisory_xact_lock(least(v_email_key, v_phone_key)) IS NULL;
  IF v_email_key <> v_phone_key THEN
    v_ignored := pg_advisory_xact_lock(greatest(v_email_key, v_phone_key)) IS NULL;
  END IF;

  -- A junk-only request is seeded with the contact holding exactly its values. coalesce, not
  -- IS NOT DISTINCT FROM, so that the unique index contacts_identity_live_key serves it
  -- (one probe, instead of a walk over every contact without a phone).
  IF v_link_email IS NULL AND v_link_phone IS NULL THEN
    v_seeds := ARRAY(SELECT c.id FROM contacts c
                      WHERE c.deleted_at IS NULL
                        AND coalesce(c.email, '') = coalesce(p_email, '')
                        AND coalesce(c.phone_number, '') = coalesce(p_phone, ''));
  END IF;

  -- Lock 2, customer locks, and the customer read under them: identify_lock_customer, the
  -- one routine that takes them (its header has the protocol), also for identify_forget.
  -- It raises IDC01 for a customer over the cap, 57014 past the deadline. An assignment: one
  -- call, its composite result kept whole.
  v_customer := identify_lock_customer(p_email, p_phone, v_link_email, v_link_phone, v_seeds,
                                       v_options, v_max_contacts, v_deadline, v_lock_timeout_ms);
  v_members := v_customer.member_ids;

  -- Then settle and write. Timestamps come from clock_timestamp() after the locks, so
  -- creation order matches lock order.
  IF cardinality(v_members) = 0 THEN
    INSERT INTO contacts AS c (email, phone_number, link_precedence, created_at, updated_at)
    VALUES (p_email, p_phone, 'primary', clock_timestamp(), clock_timestamp())
    RETURNING c.id, c.created_at INTO v_new_id, v_new_created_at;
    INSERT INTO identity_events (request_id, kind, contact_id, new_primary_id)
    VALUES (v_request_id, 'created_primary', v_new_id, v_new_id);
    -- The new customer is this one row, as written.
    RETURN QUERY
      SELECT 'created'::text, v_new_id, p_email, p_phone, 'primary'::link_precedence,
             NULL::integer, v_new_created_at;
    RETURN;
  END IF;

  v_needs_insert := (p_email IS NOT NULL AND NOT v_customer.has_email)
                    OR (p_phone IS NOT NULL AND NOT v_customer.has_phone);

  -- The cap is checked under the customer locks, so concurrent requests cannot overshoot it.
  IF v_max_contacts IS NOT NULL THEN
    v_merging := cardinality(v_customer.keys) > 1;
    IF (v_merging OR v_needs_insert)
       AND cardinality(v_members) + v_needs_insert::integer > v_max_contacts THEN
      -- IDC01: customer over the cap; lib/errors.ts answers 409 customer_too_large.
      RAISE EXCEPTION 'the customer would have % contacts, over the cap of %',
        cardinality(v_members) + v_needs_insert::integer, v_max_contacts
        USING ERRCODE = 'IDC01';
    END IF;
  END IF;

  -- Settle only when needed: a lookup of a canonical customer (one key, the primary,
  -- and every other contact pointing straight at it) writes nothing and skips the work.
  IF cardinality(v_customer.keys) = 1 AND v_customer.flat THEN
    v_primary := v_customer.keys[1];
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

  -- Nothing written and read by the one-hop read: its rows are the answer (oldest first).
  IF v_outcome = 'unchanged' AND v_customer.member_rows IS NOT NULL THEN
    RETURN QUERY
      SELECT v_outcome, r.id, r.email, r.phone_number, r.link_precedence, r.linked_id, r.created_at
        FROM unnest(v_customer.member_rows) r;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT v_outcome, c.id, c.email, c.phone_number, c.link_precedence, c.linked_id, c.created_at
      FROM contacts c
     WHERE c.id = ANY (v_members)
     ORDER BY c.created_at, c.id;
END
$$;
