-- Check balanced entries once per INSERT statement instead of once per posting row.
--
-- The ledger writes each batch's postings with one statement (COPY), so a per-row deferred
-- trigger ran its SUM query three or more times per entry; a statement-level trigger with a
-- transition table checks every entry the statement touched in one query. The rule it
-- enforces is the same and stricter in timing: an entry's postings must all be written in one
-- statement, and together they must sum to zero in one currency.
DROP TRIGGER postings_balanced ON postings;
DROP FUNCTION check_entry_balanced();

CREATE FUNCTION check_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT p.entry_id, sum(p.amount) AS total, count(*) AS legs,
           count(DISTINCT p.currency) AS currencies
      INTO bad
      FROM postings p
     WHERE p.entry_id IN (SELECT DISTINCT entry_id FROM new_postings)
     GROUP BY p.entry_id
    HAVING sum(p.amount) <> 0 OR count(*) < 2 OR count(DISTINCT p.currency) <> 1
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % is unbalanced (sum %, % postings, % currencies)',
            bad.entry_id, bad.total, bad.legs, bad.currencies USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_balanced AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION check_entries_balanced();
