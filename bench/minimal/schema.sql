-- The minimal correct implementation's schema: the service's contacts table (same columns,
-- so the bench preloads and samples both alike) with plain indexes, and one PL/pgSQL
-- function with the service's locking (sorted identifier locks, then customer locks,
-- re-read, retry in a subtransaction if the customer grew) and flat clusters (every
-- secondary points straight at the oldest contact). No audit trail, no guardrails.
CREATE TYPE link_precedence AS ENUM ('primary', 'secondary');
CREATE TABLE contacts (
  id integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
  phone_number text,
  email text,
  linked_id integer REFERENCES contacts (id),
  link_precedence link_precedence NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE INDEX ON contacts (email);
CREATE INDEX ON contacts (phone_number);
CREATE INDEX ON contacts (linked_id);

CREATE FUNCTION minimal_identify(p_email text, p_phone text)
RETURNS TABLE (id integer, email text, phone_number text, linked_id integer, link_precedence link_precedence)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_key bigint;
  v_locked integer[];
  v_primaries integer[];
  v_primary integer;
BEGIN
  FOR v_key IN
    SELECT k FROM (SELECT hashtextextended('email:' || p_email, 0) AS k WHERE p_email IS NOT NULL
                   UNION SELECT hashtextextended('phone:' || p_phone, 0) WHERE p_phone IS NOT NULL) s
     ORDER BY k
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  v_locked := ARRAY(SELECT coalesce(c.linked_id, c.id) FROM contacts c WHERE c.email = p_email
                    UNION SELECT coalesce(c.linked_id, c.id) FROM contacts c WHERE c.phone_number = p_phone
                    ORDER BY 1);
  LOOP
    BEGIN
      PERFORM pg_advisory_xact_lock(1768383845, k) FROM unnest(v_locked) k ORDER BY k;
      v_primaries := ARRAY(SELECT coalesce(c.linked_id, c.id) FROM contacts c WHERE c.email = p_email
                           UNION SELECT coalesce(c.linked_id, c.id) FROM contacts c WHERE c.phone_number = p_phone
                           ORDER BY 1);
      EXIT WHEN v_primaries <@ v_locked;
      RAISE EXCEPTION USING ERRCODE = 'MIN01';
    EXCEPTION WHEN SQLSTATE 'MIN01' THEN
      v_locked := v_primaries;
    END;
  END LOOP;

  IF cardinality(v_primaries) = 0 THEN
    INSERT INTO contacts AS c (email, phone_number, link_precedence)
    VALUES (p_email, p_phone, 'primary') RETURNING c.id INTO v_primary;
  ELSE
    SELECT c.id INTO v_primary FROM contacts c WHERE c.id = ANY (v_primaries)
     ORDER BY c.created_at, c.id LIMIT 1;
    IF cardinality(v_primaries) > 1 THEN
      UPDATE contacts c SET linked_id = v_primary, link_precedence = 'secondary', updated_at = now()
       WHERE (c.id = ANY (v_primaries) OR c.linked_id = ANY (v_primaries)) AND c.id <> v_primary;
    END IF;
    IF (p_email IS NOT NULL AND NOT EXISTS (SELECT FROM contacts c
          WHERE c.email = p_email AND (c.id = v_primary OR c.linked_id = v_primary)))
       OR (p_phone IS NOT NULL AND NOT EXISTS (SELECT FROM contacts c
          WHERE c.phone_number = p_phone AND (c.id = v_primary OR c.linked_id = v_primary))) THEN
      INSERT INTO contacts (email, phone_number, linked_id, link_precedence)
      VALUES (p_email, p_phone, v_primary, 'secondary');
    END IF;
  END IF;

  RETURN QUERY SELECT c.id, c.email, c.phone_number, c.linked_id, c.link_precedence FROM contacts c
   WHERE c.id = v_primary OR c.linked_id = v_primary ORDER BY c.created_at, c.id;
END
$$;
