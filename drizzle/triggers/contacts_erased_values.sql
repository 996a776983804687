-- An erasure must hold against the import, and the old service's table still holds the
-- person, under ids the erasure never saw too: a duplicate the import skipped, a row written
-- after the import. So every erasure leaves a keyed hash of each email and phone number it
-- took in erased_values, which the import consults (lib/import.ts; docs/privacy.md says what
-- is kept and why that is lawful). A trigger rather than a step of identify_forget, so it
-- holds for any erasure, by any code, in the very statement that deletes: it records only
-- contacts an erasures row of the same transaction lists (erased_values_record.sql).
-- AFTER and FOR EACH STATEMENT, with the deleted rows as a transition table, so an erasure of
-- 50,000 contacts hashes them in one statement. TRUNCATE fires no DELETE trigger.
CREATE OR REPLACE TRIGGER contacts_erased_values
AFTER DELETE ON contacts
REFERENCING OLD TABLE AS erased_contacts
FOR EACH STATEMENT EXECUTE FUNCTION erased_values_record();
