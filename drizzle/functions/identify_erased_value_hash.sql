-- The keyed hash under which the erased-values list (the erased_values table) holds an erased
-- email or phone number: HMAC-SHA256 (RFC 2104) of '<kind>:<value>', the value normalized as
-- lib/input.ts normalizes requests, under the key of erasure_key. The kind is hashed too, so an
-- email and a phone number never share an entry.
--
-- HMAC(K, m) = H((K xor opad) || H((K xor ipad) || m)). erasure_key keeps the key as those two
-- padded blocks, so PostgreSQL's built-in sha256 (11+) computes it: no pgcrypto, which
-- PGlite and some hosts lack. Keyed, not a plain hash: a plain SHA-256 of a phone number is
-- reversed by anyone who hashes the ten billion candidates, and is the same in every
-- database; these hashes mean nothing without the key (docs/privacy.md says where it lives).
--
-- LANGUAGE sql and IMMUTABLE, so a statement inlines it: the import hashes every source row
-- in one statement (lib/import.ts), and the trigger every erased contact in one
-- (erased_values_record.sql).
CREATE OR REPLACE FUNCTION identify_erased_value_hash(p_kind text, p_value text, p_inner_pad bytea, p_outer_pad bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT
AS $$
  SELECT sha256(p_outer_pad || sha256(p_inner_pad || convert_to(p_kind || ':' || p_value, 'UTF8')))
$$;
