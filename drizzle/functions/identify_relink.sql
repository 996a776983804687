-- Makes the customer that an email, a phone number or a contact id reaches what the
-- guardrails in p_options say it is, in one statement (npm run relink, lib/relink.ts): it
-- splits a customer joined only through values now junk, and joins customers that share a
-- value no longer junk. Returns one row per resulting customer: its primary, its live
-- contacts, those of them whose primary changed (moved), the primaries they had before, and
-- whether it carries a value (junk, since it does not link) that another customer of the
-- result carries too (no row when nothing is reached). A customer split off that shares no
-- value at all with the others was joined by a request alone (below), which the operator
-- should see before relinking. Nothing changes when nothing needs to: a second run
-- writes nothing.
--
-- What a customer is. The customers are the connected components of contacts linked by a
-- shared email or phone number that is not junk, and the oldest live contact (created_at,
-- then id) of each is its primary: exactly what a fresh replay of every contact, in the order
-- they were created, under these guardrails, would link. Soft-deleted contacts keep bridging,
-- as they do for requests (deleting a contact never splits its customer): a deleted contact
-- links through its values to every contact that was created while it was live, which is
-- what a replay that also deletes it at its time would link. What is not stored cannot link:
-- a request that brought one customer's email with another's phone, when both were already
-- known, merged the two without writing a contact holding both (the README's rule 4), and a
-- relink splits such customers again (the README's "When strangers were merged" says so).
--
-- Which contacts it considers: the region, as identify_lock_customer reads it under these
-- guardrails from the value or the contact given (every live contact reached through
-- linked_id in either direction and through live contacts' non-junk values: the customer as
-- requests link it now, plus every customer a value no longer junk joins to it), and the
-- soft-deleted contacts that share a non-junk value with it, to a fixed point (found through
-- contacts_email_deleted_idx and contacts_phone_number_deleted_idx), with whatever live
-- customer those reach. A relink points every contact of a customer, deleted ones included,
-- straight at its primary. Components made of deleted contacts alone are left as they are:
-- nobody sees them.
--
-- Locks: the customer locks of requests and erasures, taken and the region read under them
-- by identify_lock_customer, the one routine that takes customer locks (its header has the
-- protocol), without a cap (a relink is what a customer over the cap needs) and without a
-- deadline (lock_timeout bounds each wait). Every request that could write to a contact of
-- the region reaches the same customer under the same guardrails, so it holds one of those
-- keys while it writes: it either finished before, or reads the relinked customers after this
-- commits, never half a split. The identifier locks of requests are not needed: a relink
-- creates no contact and waits for no lock while it holds one. Before its first read it takes
-- ROW EXCLUSIVE on contacts, as every writer does (identify_contact.sql, path B, says why): an
-- import, under EXCLUSIVE, then either committed before the read or waits for this to commit.
-- Lookups take no lock (identify_contact.sql, path A) and never wait for a relink; they read
-- the customers as they stood before it commits, or after.
--
-- The components are found in memory: the region's contacts get positions in age order,
-- each shared non-junk value links its live holders to the oldest of them (k - 1 edges for
-- k holders, not k²) and each deleted holder to the holders it overlapped in time, and a
-- union-find whose roots are always the smaller position puts them together. Linear in the
-- region's contacts plus the deleted contacts' overlaps.
--
-- p_options, the options jsonb (lib/db/sql-contract.ts; every key optional):
--   requestId      text      recorded on every identity event ('relinked', one per moved contact)
--   lockTimeoutMs  integer   required: longest wait for each lock before 55P03 (0 = forever);
--                            lib/relink.ts sends DB_LOCK_TIMEOUT_MS, whose default lib/config.ts holds
--   dryRun         boolean   lock, read and decide, but write nothing
--   junkEmails, junkEmailPatterns, junkPhones, junkPhonePatterns   text[]   the values that never link
--
-- Errors it raises: 22023 unless exactly one of p_email, p_phone, p_id is given, or without
-- lockTimeoutMs; 55P03 after
-- lockTimeoutMs. IDR02, the region grew through a deleted contact, is caught inside and
-- never leaves. Its messages never quote a value.
--
-- Planned as the other functions are (identify_customer_contacts.sql says why): once per
-- session, with enable_seqscan = off, every contact found by an index.
CREATE OR REPLACE FUNCTION identify_relink(p_email text, p_phone text, p_id integer, p_options jsonb DEFAULT '{}')
RETURNS TABLE (
  primary_id integer,
  contact_ids integer[],
  moved_ids integer[],
  old_primary_ids integer[],
  shares_value boolean
)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_options jsonb := coalesce(p_options, '{}');
  v_request_id text := coalesce(v_options ->> 'requestId', 'unknown');
  v_dry_run boolean := coalesce((v_options ->> 'dryRun')::boolean, false);
  v_lock_timeout_ms integer := (v_options ->> 'lockTimeoutMs')::integer;
  v_junk_emails text[] := identify_junk_list(v_options, 'junkEmails');
  v_junk_email_patterns text[] := identify_junk_list(v_options, 'junkEmailPatterns');
  v_junk_phones text[] := identify_junk_list(v_options, 'junkPhones');
  v_junk_phone_patterns text[] := identify_junk_list(v_options, 'junkPhonePatterns');
  v_seeds integer[];
  v_members integer[];
  v_deleted integer[];
  v_outside integer[];
  v_ids integer[];
  v_parent integer[];
  v_a integer;
  v_b integer;
  v_ignored boolean;
BEGIN
  IF num_nonnulls(p_email, p_phone, p_id) <> 1 THEN
    RAISE EXCEPTION 'identify_relink needs exactly one of an email, a phone number or a contact id'
      USING ERRCODE = '22023';
  END IF;
  IF v_lock_timeout_ms IS NULL THEN
    RAISE EXCEPTION 'identify_relink needs the lockTimeoutMs option' USING ERRCODE = '22023';
  END IF;
  v_ignored := set_config('lock_timeout', v_lock_timeout_ms::text, true) IS NULL;
  LOCK TABLE contacts IN ROW EXCLUSIVE MODE;

  -- The customer locks, and the region's live contacts read under them. The value given
  -- links even when it is junk: `relink --email test@test.com` reaches every customer that
  -- carries it, which is what an operator who just listed it wants relinked. Then the
  -- soft-deleted contacts that share a non-junk value with the region, to a fixed point, and
  -- the live contacts they share one with: a deleted contact may bridge to a customer the
  -- locked read did not reach (through a value no longer junk), and then the region is read
  -- and locked again with those as seeds, after letting go of the locks taken (the sub-block's
  -- rollback, as identify_lock_customer's own retry), so no lock is waited for while one is held.
  v_seeds := array_remove(ARRAY[p_id], NULL);
  LOOP
    BEGIN
      v_members := (identify_lock_customer(p_email, p_phone, p_email, p_phone, v_seeds, v_options,
                                           NULL, NULL, v_lock_timeout_ms)).member_ids;
      IF cardinality(v_members) = 0 THEN
        RETURN;
      END IF;
      WITH RECURSIVE g (k, v, id, email, phone, live) AS (
          SELECT 'c'::"char", NULL::text, c.id, c.email, c.phone_number, true
            FROM unnest(v_members) m (id) JOIN contacts c ON c.id = m.id
        UNION
          SELECT n.k, n.v, n.id, n.email, n.phone, n.live FROM g CROSS JOIN LATERAL (
              -- a contact's values, unless junk
              SELECT 'e'::"char" AS k, g.email AS v, NULL::integer AS id, NULL::text AS email,
                     NULL::text AS phone, NULL::boolean AS live
               WHERE g.k = 'c' AND g.email IS NOT NULL
                 AND NOT identify_is_junk(g.email, v_junk_emails, v_junk_email_patterns)
              UNION ALL
              SELECT 'p', g.phone, NULL, NULL, NULL, NULL
               WHERE g.k = 'c' AND g.phone IS NOT NULL
                 AND NOT identify_is_junk(g.phone, v_junk_phones, v_junk_phone_patterns)
              UNION ALL
              -- a value's holders, deleted (contacts_*_deleted_idx) and live
              SELECT 'c', NULL, c.id, c.email, c.phone_number, false FROM contacts c
               WHERE g.k = 'e' AND c.email = g.v AND c.deleted_at IS NOT NULL
              UNION ALL
              SELECT 'c', NULL, c.id, c.email, c.phone_number, false FROM contacts c
               WHERE g.k = 'p' AND c.phone_number = g.v AND c.deleted_at IS NOT NULL
              UNION ALL
              SELECT 'c', NULL, c.id, c.email, c.phone_number, true FROM contacts c
               WHERE g.k = 'e' AND c.email = g.v AND c.deleted_at IS NULL
              UNION ALL
              SELECT 'c', NULL, c.id, c.email, c.phone_number, true FROM contacts c
               WHERE g.k = 'p' AND c.phone_number = g.v AND c.deleted_at IS NULL
            ) n
      )
      SELECT coalesce(array_agg(g.id) FILTER (WHERE g.k = 'c' AND NOT g.live), '{}'),
             coalesce(array_agg(g.id) FILTER (WHERE g.k = 'c' AND g.live AND NOT g.id = ANY (v_members)), '{}')
        INTO v_deleted, v_outside
        FROM g;
      EXIT WHEN cardinality(v_outside) = 0;
      v_seeds := v_members || v_outside;
      -- IDR02: the region grew through a deleted contact; caught right below, read again.
      RAISE EXCEPTION USING ERRCODE = 'IDR02', MESSAGE = 'region grew through a deleted contact';
    EXCEPTION WHEN SQLSTATE 'IDR02' THEN
      NULL;
    END;
  END LOOP;

  -- Positions 1..n in age order: a union-find root is always the smaller position.
  v_ids := ARRAY(SELECT c.id FROM unnest(v_members || v_deleted) u (id)
                   JOIN contacts c ON c.id = u.id
                  ORDER BY c.created_at, c.id);
  v_parent := ARRAY(SELECT generate_series(1, cardinality(v_ids)));

  FOR v_a, v_b IN
    WITH r AS (
      SELECT u.pos::integer AS pos, c.email, c.phone_number, c.created_at,
             coalesce(c.deleted_at, 'infinity') AS ended, c.deleted_at IS NULL AS live,
             c.email IS NOT NULL
               AND NOT identify_is_junk(c.email, v_junk_emails, v_junk_email_patterns) AS email_links,
             c.phone_number IS NOT NULL
               AND NOT identify_is_junk(c.phone_number, v_junk_phones, v_junk_phone_patterns) AS phone_links
        FROM unnest(v_ids) WITH ORDINALITY u (id, pos)
        JOIN contacts c ON c.id = u.id
    ), edges (a, b) AS (
      -- the live holders of a value, each to the oldest of them
      SELECT min(r.pos) OVER (PARTITION BY r.email), r.pos FROM r WHERE r.live AND r.email_links
      UNION ALL
      SELECT min(r.pos) OVER (PARTITION BY r.phone_number), r.pos FROM r WHERE r.live AND r.phone_links
      UNION ALL
      -- a deleted holder to every holder that was live while it was
      SELECT d.pos, x.pos FROM r d JOIN r x ON x.email = d.email AND x.pos <> d.pos
       WHERE NOT d.live AND d.email_links AND x.created_at < d.ended AND d.created_at < x.ended
      UNION ALL
      SELECT d.pos, x.pos FROM r d JOIN r x ON x.phone_number = d.phone_number AND x.pos <> d.pos
       WHERE NOT d.live AND d.phone_links AND x.created_at < d.ended AND d.created_at < x.ended
    )
    SELECT e.a, e.b FROM edges e WHERE e.a <> e.b
  LOOP
    -- Find both roots, halving the paths; the larger root goes under the smaller.
    WHILE v_parent[v_a] <> v_a LOOP
      v_parent[v_a] := v_parent[v_parent[v_a]];
      v_a := v_parent[v_a];
    END LOOP;
    WHILE v_parent[v_b] <> v_b LOOP
      v_parent[v_b] := v_parent[v_parent[v_b]];
      v_b := v_parent[v_b];
    END LOOP;
    IF v_a < v_b THEN
      v_parent[v_b] := v_a;
    ELSIF v_b < v_a THEN
      v_parent[v_a] := v_b;
    END IF;
  END LOOP;
  -- Every parent is a smaller position, so one pass in order leaves each on its root.
  FOR v_a IN 1 .. cardinality(v_parent) LOOP
    v_parent[v_a] := v_parent[v_parent[v_a]];
  END LOOP;

  RETURN QUERY
    WITH placed AS (
      SELECT c.id, c.email, c.phone_number, c.deleted_at IS NULL AS live, c.link_precedence, c.linked_id,
             CASE WHEN c.link_precedence = 'primary' THEN c.id ELSE c.linked_id END AS old_primary,
             -- the oldest live contact of the component (positions are in age order)
             first_value(c.id) OVER (PARTITION BY u.root ORDER BY c.deleted_at IS NULL DESC, u.pos) AS new_primary,
             bool_or(c.deleted_at IS NULL) OVER (PARTITION BY u.root) AS has_live
        FROM unnest(v_ids, v_parent) WITH ORDINALITY u (id, root, pos)
        JOIN contacts c ON c.id = u.id
    ), planned AS (
      SELECT p.*,
             CASE WHEN p.id = p.new_primary THEN 'primary' ELSE 'secondary' END::link_precedence AS new_precedence,
             CASE WHEN p.id = p.new_primary THEN NULL ELSE p.new_primary END AS new_linked
        FROM placed p
       WHERE p.has_live
    ), held AS (
      -- each value, junk or not, and the resulting customers that carry it
      SELECT DISTINCT h.v, p.new_primary
        FROM planned p CROSS JOIN LATERAL (VALUES ('e:' || p.email), ('p:' || p.phone_number)) h (v)
       WHERE h.v IS NOT NULL
    ), sharing AS (
      SELECT DISTINCT h.new_primary FROM held h
       WHERE h.v IN (SELECT g.v FROM held g GROUP BY g.v HAVING count(*) > 1)
    ), changes AS (
      SELECT p.* FROM planned p
       WHERE (p.link_precedence, p.linked_id) IS DISTINCT FROM (p.new_precedence, p.new_linked)
    ), updated AS (
      UPDATE contacts c
         SET link_precedence = x.new_precedence, linked_id = x.new_linked, updated_at = clock_timestamp()
        FROM changes x
       WHERE c.id = x.id AND NOT v_dry_run
      RETURNING c.id
    ), recorded AS (
      INSERT INTO identity_events (request_id, kind, contact_id, old_primary_id, new_primary_id)
      SELECT v_request_id, 'relinked', x.id, x.old_primary, x.new_primary
        FROM changes x
       WHERE NOT v_dry_run
      RETURNING 1
    )
    SELECT p.new_primary,
           array_agg(p.id ORDER BY p.id) FILTER (WHERE p.live),
           coalesce(array_agg(p.id ORDER BY p.id)
                      FILTER (WHERE p.live AND p.old_primary IS DISTINCT FROM p.new_primary), '{}'),
           array_agg(DISTINCT p.old_primary ORDER BY p.old_primary) FILTER (WHERE p.live),
           EXISTS (SELECT FROM sharing x WHERE x.new_primary = p.new_primary)
      FROM planned p
     GROUP BY p.new_primary
     ORDER BY p.new_primary;
END
$$;
