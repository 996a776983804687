-- The trigger function of contacts_erased_values (drizzle/triggers/contacts_erased_values.sql,
-- which says why contacts has it): after a DELETE on contacts, records in erased_values the
-- keyed hash (identify_erased_value_hash) of every email and phone number of the deleted
-- contacts that an erasures row written by the same transaction lists, the rule
-- identity_events_refuse_change.sql applies too. A delete that is no erasure records nothing.
--
-- The first erasure makes the key: 64 bytes from four gen_random_uuid() (PostgreSQL 13+, from
-- the server's strong random source; 488 random bits), stored as HMAC's two padded blocks.
-- Two first erasures at once: the second waits on the one-row primary key, then finds the
-- first's key, so both hash under it.
--
-- Junk values (JUNK_EMAILS, JUNK_PHONE_NUMBERS) are recorded like any other: this trigger
-- cannot know the guardrails, and the import, which does, never lets a junk value suppress a
-- row (lib/import.ts), so a placeholder an erased person typed keeps nobody else out.
--
-- The erased contacts are matched to the erasure's ids by a hash join over unnest, not by
-- `= ANY (contact_ids)`, which compares every row with every element (identify_forget.sql
-- measured 7.6 s for 50,000 contacts that way).
CREATE OR REPLACE FUNCTION erased_values_record()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  v_key bytea;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM erasures e WHERE e.transaction_id = txid_current()) THEN
    RETURN NULL;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM erasure_key) THEN
    v_key := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                            || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
    INSERT INTO erasure_key (inner_pad, outer_pad)
    SELECT decode(string_agg(lpad(to_hex(get_byte(v_key, i) # 54), 2, '0'), '' ORDER BY i), 'hex'),
           decode(string_agg(lpad(to_hex(get_byte(v_key, i) # 92), 2, '0'), '' ORDER BY i), 'hex')
      FROM generate_series(0, 63) i
    ON CONFLICT ("only") DO NOTHING;
  END IF;

  INSERT INTO erased_values (kind, value_hash)
  SELECT DISTINCT v.kind, identify_erased_value_hash(v.kind, v.value, k.inner_pad, k.outer_pad)
    FROM erased_contacts d
    JOIN (SELECT unnest(e.contact_ids) AS id FROM erasures e
           WHERE e.transaction_id = txid_current()) listed ON listed.id = d.id
   CROSS JOIN LATERAL (VALUES ('email', d.email), ('phone', d.phone_number)) v(kind, value)
   CROSS JOIN erasure_key k
   WHERE v.value IS NOT NULL
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;
