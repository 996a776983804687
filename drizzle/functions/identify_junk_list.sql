-- One junk list of the options jsonb (junkEmails, junkEmailPatterns, junkPhones or
-- junkPhonePatterns), as an array; null when the list is absent, so callers can skip the
-- junk test altogether. PL/pgSQL for the same reason as identify_is_junk.
CREATE OR REPLACE FUNCTION identify_junk_list(p_options jsonb, p_key text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
  IF jsonb_typeof(p_options -> p_key) = 'array' THEN
    RETURN ARRAY(SELECT jsonb_array_elements_text(p_options -> p_key));
  END IF;
  RETURN NULL;
END
$$;
