-- Whether a value is junk: listed exactly, or matching one of the PostgreSQL regular
-- expressions. Junk is stored on contacts but never used to link them (lib/guardrails.ts).
--
-- PL/pgSQL rather than LANGUAGE sql: before PostgreSQL 18 a SQL function is planned again
-- on every call, which dominated a lookup's database time (see identify_contact.sql).
CREATE OR REPLACE FUNCTION identify_is_junk(p_value text, p_exact text[], p_patterns text[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
  v_pattern text;
BEGIN
  IF p_value IS NULL THEN
    RETURN false;
  END IF;
  IF p_value = ANY (coalesce(p_exact, '{}')) THEN
    RETURN true;
  END IF;
  FOREACH v_pattern IN ARRAY coalesce(p_patterns, '{}') LOOP
    IF p_value ~ v_pattern THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$$;
