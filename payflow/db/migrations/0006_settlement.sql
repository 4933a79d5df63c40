-- Settlement runs and reconciliation results.

-- Each reconciliation run, with its problems (empty when everything ties): the dashboard and
-- the metrics endpoint show the last one.
CREATE TABLE reconciliation_runs (
    id          bigserial PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    ok          boolean NOT NULL,
    checks      integer NOT NULL,
    problems    jsonb NOT NULL DEFAULT '[]'
);

-- Entries a settlement has not taken yet, by the day they become settleable.
CREATE INDEX journal_entries_settles_on ON journal_entries (settles_on)
    WHERE settles_on IS NOT NULL;
