-- One page of the change feed, GET /identify/changes (lib/changes.ts): the changes after a
-- position, oldest first, at most p_limit of them, with the xmax of the snapshot read and
-- which database read them. Reads only, and takes no lock. (VOLATILE, not STABLE, because
-- step 2 below needs each of its statements to see transactions that committed after the
-- page's snapshot.)
--
-- A change is a row of identity_events (a contact created, imported or relinked) or one
-- contact of a row of erasures (that contact erased). Its position is
--   (transaction_id, source, id, item)
-- where transaction_id is the writing transaction's id (txid_current(), the epoch-qualified
-- xid8 value, never reused or wrapped), source 0 for an event and 1 for an erasure, id the
-- row's id and item, for an erasure, the contact's place in its contact_ids (1 for the first;
-- an erasure row names several, and erasures are append-only, so a place never moves), 0 for
-- an event.
--
-- Never skips, never repeats. Commit order is not id order: a transaction may take its id
-- early and commit late, so a cursor on ids alone would pass over its rows before they are
-- visible. So a page is read in three steps:
--   1. the first p_limit changes after the position among those one statement's snapshot
--      (pg_current_snapshot(), taken with the rows) can see, and that snapshot;
--   2. the horizon: the smallest transaction id the snapshot lists as running, below the
--      last of those changes, that has or may still have changes here, else the snapshot's
--      xmax. A listed transaction is passed over only when it cannot: rolled back since, or
--      committed since without a row here (checked in a statement of its own, whose newer
--      snapshot sees what it committed), or running in another database (pg_stat_activity,
--      read before the statuses), since transaction ids are the server's and the snapshot
--      lists every database's. Any
--      other (running here, prepared, a session this role may not see) holds the horizon;
--   3. the changes below the horizon.
-- Every transaction below the horizon that has changes here had ended when the snapshot was
-- taken, so they are visible to step 1; every one still to commit here has an id at or above
-- it: nothing can ever appear behind a position handed out. Changes of transactions still
-- running wait for a later page, so the feed runs behind the oldest transaction writing to
-- this database, however long that one takes, and only behind those. The horizon may come
-- out lower than an earlier page's (a transaction this role cannot see), never wrong; so a
-- cursor is refused as unknown only at or past the snapshot's xmax, which no page can have
-- handed out and which only grows.
--
-- A position means something in one database only. Transaction ids are the server's, so
-- another database on the same server, a CREATE DATABASE ... TEMPLATE copy, a restored copy
-- or a Neon branch has its own changes at the same ids: a cursor of one read by another
-- would pass over the other's earlier changes without a word. So every page names its
-- database, database_id, and the caller refuses a cursor that names another. It is the
-- first 16 hex digits of the SHA-256 of the facts lib/db/deployment.ts reasons with: the
-- server's system identifier (pg_control_system(), where this role may call it: another
-- server, a logical restore), the database's OID (another database, a template copy) and
-- neon.timeline_id (a Neon branch, a restore of one). Read in this call, not stored, since a
-- copy carries every stored row; cheap enough to read on every page (a read of pg_control
-- and a lookup of pg_database: tens of microseconds), where pg_settings, as deployment.ts
-- reads it, costs most of a millisecond; Neon defines neon.timeline_id with no flags, so
-- current_setting() can read it as any role. What this role cannot read counts as '-': the
-- same database answers the same on every page, and a role granted pg_control_system()
-- later sees a new database_id, which costs each consumer a replay, never a change.
--
-- An exact mirror. The order of two transactions' ids is not the order their changes took
-- effect in either (an import takes its id long before it locks contacts), so the contact's
-- primary is not taken from the event, which says what it was then, but read from contacts
-- in this same snapshot: what it is now. Any change after this read is made by a transaction
-- the snapshot did not see, and which step 2 did not pass over (every change writes an
-- event), so at or above the horizon: it comes on a later page with the newer primary; applied in
-- order, the last change of every contact carries its primary as it stands. A contact
-- soft-deleted by now reads as 'deleted' (no primary: it is not a live contact); one whose
-- row is gone cannot have events left (an erasure deletes them with it) and reads as
-- 'erased' all the same.
--
-- Bounded work: two index range reads, on identity_events_feed_idx and erasures_feed_idx,
-- each of at most p_limit (+ 1) rows, a primary-key probe of contacts per event, at most
-- p_limit contacts taken from the erasures read, by array slice from the position's place
-- (an erasure may list any number, and unnesting the whole of each made a page's work grow
-- with it), then the merge of at most 2 * p_limit rows; then, only for
-- transactions running when the page was read, a status check and two index probes each
-- (none on a quiet database, a few under load). Which erasure contributes how many comes
-- from contact_count, so no list is read to be counted; each erasure the page takes contacts
-- from is still fetched whole (PostgreSQL slices an array only once it has it all): a copy,
-- not a row per contact.
-- Planned once per session with enable_seqscan = off, as the other functions are, so no
-- plan made without statistics reads a table whole.
--
-- Arguments, from the cursor (lib/changes.ts): an event position (T, 0, I) reads events
-- after (T, I) and every erasure of T on; an erasure position (T, 1, E, K) passes
-- I = the largest bigint, so no more events of T, and reads erasure E's contacts from place
-- K + 1, then the erasures after (T, E). The beginning is (0, 0, 0, 0).
--
-- The snapshot's xmax and the database_id come back on every row, and alone (with null change
-- columns) when the page is empty, so that the caller can refuse a cursor at or past the
-- xmax, or of another database.
CREATE OR REPLACE FUNCTION identify_changes(
  p_transaction_id bigint,
  p_event_id bigint,
  p_erasure_id bigint,
  p_erasure_item integer,
  p_limit integer
)
RETURNS TABLE (
  database_id text,
  snapshot_xmax bigint,
  transaction_id bigint,
  source integer,
  id bigint,
  item integer,
  contact_id integer,
  primary_contact_id integer,
  kind text,
  occurred_at timestamptz
)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_snapshot pg_snapshot;
  v_here oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
  v_database text;
  v_xmax bigint;
  v_below bigint;
  v_xid xid8;
  v_status text;
  v_elsewhere xid[];
  v_transaction_ids bigint[];
  v_sources integer[];
  v_ids bigint[];
  v_items integer[];
  v_contact_ids integer[];
  v_primary_ids integer[];
  v_kinds text[];
  v_times timestamptz[];
BEGIN
  -- Which database this is: system identifier, OID, Neon timeline, as the header says.
  v_database := left(encode(sha256(convert_to(concat_ws('/',
    coalesce(CASE WHEN has_function_privilege('pg_control_system()', 'execute')
                  THEN (SELECT s.system_identifier::text FROM pg_control_system() s) END, '-'),
    v_here::text,
    coalesce(nullif(current_setting('neon.timeline_id', true), ''), '-')), 'UTF8')), 'hex'), 16);

  -- 1. The page's candidates: the first p_limit changes after the position among those this
  --    statement's snapshot can see, read together with that snapshot.
  WITH snapshot AS MATERIALIZED (
    SELECT pg_current_snapshot() AS s
  ), events AS (
    -- Each event with where its contact stands: its primary, 0 when soft-deleted, null when
    -- the row is gone. A scalar subquery, so it is one primary-key probe per event returned
    -- (a join may be planned as a merge over the whole primary key), and inside the LIMIT,
    -- so only the events returned are probed.
    SELECT e.transaction_id, e.id, e.contact_id, e.kind, e.occurred_at,
           (SELECT CASE WHEN c.deleted_at IS NULL THEN coalesce(c.linked_id, c.id) ELSE 0 END
              FROM contacts c WHERE c.id = e.contact_id) AS stands
      FROM identity_events e
     WHERE (e.transaction_id, e.id) > (p_transaction_id, p_event_id)
       AND e.transaction_id < (SELECT pg_snapshot_xmax(snapshot.s)::text::bigint FROM snapshot)
     ORDER BY e.transaction_id, e.id
     LIMIT p_limit
  ), erased AS (
    -- One more row than the page: the first may hold only contacts already read. Each with
    -- the places already read (done) and how many contacts the rows before it give the page
    -- (before), each row at most p_limit.
    SELECT r.transaction_id, r.id, r.contact_ids, r.occurred_at, r.done,
           coalesce(sum(least(r.contact_count - r.done, p_limit))
                      OVER (ORDER BY r.transaction_id, r.id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
      FROM (SELECT r.transaction_id, r.id, r.contact_ids, r.contact_count, r.occurred_at,
                   -- At most the whole list, so that no place below overflows an integer.
                   CASE WHEN (r.transaction_id, r.id) = (p_transaction_id, p_erasure_id)
                        THEN least(p_erasure_item, r.contact_count) ELSE 0 END AS done
              FROM erasures r
             WHERE (r.transaction_id, r.id) >= (p_transaction_id, p_erasure_id)
               AND r.transaction_id < (SELECT pg_snapshot_xmax(snapshot.s)::text::bigint FROM snapshot)
             ORDER BY r.transaction_id, r.id
             LIMIT p_limit + 1) r
  ), changes AS (
    SELECT e.transaction_id, 0 AS source, e.id, 0 AS item, e.contact_id,
           CASE WHEN e.stands > 0 THEN e.stands END AS primary_contact_id,
           CASE WHEN e.stands IS NULL THEN 'erased'
                WHEN e.stands = 0 THEN 'deleted'
                WHEN e.kind = 'relinked' THEN 'relinked'
                ELSE 'created' END AS kind,
           e.occurred_at
      FROM events e
    UNION ALL
    -- Only the places the page may reach: after those read, no more than the rows before
    -- left of p_limit.
    SELECT r.transaction_id, 1, r.id, (r.done + u.n)::integer, u.contact_id, NULL::integer,
           'erased', r.occurred_at
      FROM erased r
     CROSS JOIN LATERAL unnest(r.contact_ids[r.done + 1 : (r.done + p_limit - r.before)::integer])
                WITH ORDINALITY AS u(contact_id, n)
     WHERE r.before < p_limit
  ), page AS (
    SELECT * FROM changes ch
     ORDER BY ch.transaction_id, ch.source, ch.id, ch.item
     LIMIT p_limit
  )
  SELECT (SELECT snapshot.s FROM snapshot),
         coalesce(array_agg(p.transaction_id ORDER BY p.transaction_id, p.source, p.id, p.item), '{}'),
         array_agg(p.source ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.id ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.item ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.contact_id ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.primary_contact_id ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.kind ORDER BY p.transaction_id, p.source, p.id, p.item),
         array_agg(p.occurred_at ORDER BY p.transaction_id, p.source, p.id, p.item)
    INTO v_snapshot, v_transaction_ids, v_sources, v_ids, v_items, v_contact_ids, v_primary_ids,
         v_kinds, v_times
    FROM page p;
  v_xmax := pg_snapshot_xmax(v_snapshot)::text::bigint;

  -- 2. The horizon: the first transaction the snapshot saw running, below the last candidate,
  --    that has or may still have changes here. Each check is a statement of its own, with a
  --    snapshot newer than the page's.
  v_below := v_xmax;
  FOR v_xid IN
    SELECT x FROM pg_snapshot_xip(v_snapshot) x
     WHERE x::text::bigint < v_transaction_ids[cardinality(v_transaction_ids)]
     ORDER BY x
  LOOP
    -- The transactions then running in other databases, read once, before any status: a
    -- transaction still running at its status check below was running at this read too, so
    -- it is listed here if it is another database's. (Read after the status, one that ends
    -- in between would be missing here and taken for this database's, holding the horizon
    -- for nothing: an empty page while the database is quiet.)
    IF v_elsewhere IS NULL THEN
      SELECT coalesce(array_agg(a.backend_xid), '{}') INTO v_elsewhere
        FROM pg_stat_activity a
       WHERE a.datid <> v_here AND a.backend_xid IS NOT NULL;
    END IF;
    v_status := pg_xact_status(v_xid);
    -- Rolled back: nothing of it will ever be visible.
    CONTINUE WHEN v_status = 'aborted';
    IF v_status = 'committed' THEN
      -- Committed since the page's snapshot: what it wrote here, if anything, is visible now.
      CONTINUE WHEN NOT EXISTS (SELECT FROM identity_events e WHERE e.transaction_id = v_xid::text::bigint)
                AND NOT EXISTS (SELECT FROM erasures r WHERE r.transaction_id = v_xid::text::bigint);
    ELSE
      -- Running: only a transaction of another database can be passed over.
      CONTINUE WHEN v_xid::xid = ANY (v_elsewhere);
    END IF;
    v_below := v_xid::text::bigint;
    EXIT;
  END LOOP;

  -- 3. The candidates below the horizon; the snapshot's xmax alone when there are none.
  RETURN QUERY
    SELECT v_database, v_xmax, p.transaction_id, p.source, p.id, p.item, p.contact_id,
           p.primary_contact_id, p.kind, p.occurred_at
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (
        SELECT * FROM unnest(v_transaction_ids, v_sources, v_ids, v_items, v_contact_ids,
                             v_primary_ids, v_kinds, v_times)
                   AS u(transaction_id, source, id, item, contact_id, primary_contact_id, kind,
                        occurred_at)
         WHERE u.transaction_id < v_below) p ON true
     ORDER BY p.transaction_id, p.source, p.id, p.item;
END
$$;
