-- Settles every customer in the table: for data that did not come through identify_contact,
-- such as an import from the service identify replaced (lib/import.ts). Returns how many
-- contacts changed.
--
-- EXCLUSIVE, which holds back every writer but lets plain reads through: lookups
-- (identify_contact's path A) go on answering from the state before it. A request that
-- had read a customer before it must not write from that stale read afterwards: every
-- writer takes ROW EXCLUSIVE before its first read (identify_contact's lock 0,
-- identify_forget), so it either ended before this lock or waits for its commit. The
-- bookkeeping table is emptied first, so a second call in one transaction works too.
CREATE OR REPLACE FUNCTION identify_settle_all(p_request_id text, p_options jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_contact record;
  v_members integer[];
  v_changed integer;
  v_total integer := 0;
BEGIN
  LOCK TABLE contacts IN EXCLUSIVE MODE;
  CREATE TEMP TABLE IF NOT EXISTS identify_settled (id integer PRIMARY KEY) ON COMMIT DROP;
  TRUNCATE identify_settled;
  FOR v_contact IN
    SELECT c.id FROM contacts c
     WHERE c.deleted_at IS NULL ORDER BY c.created_at, c.id
  LOOP
    CONTINUE WHEN EXISTS (SELECT 1 FROM identify_settled s WHERE s.id = v_contact.id);
    v_members := identify_customer_contact_ids(NULL, NULL, ARRAY[v_contact.id], p_options);
    INSERT INTO identify_settled SELECT unnest(v_members) ON CONFLICT DO NOTHING;
    SELECT s.changed INTO v_changed FROM identify_settle(v_members, p_request_id) s;
    v_total := v_total + v_changed;
  END LOOP;
  RETURN v_total;
END
$$;
