-- Settlement reports kept for download, and per-merchant API rate limits.

-- Each settlement keeps its CSV report, as written when it ran, for the dashboard to download.
ALTER TABLE settlements ADD COLUMN report text;

-- Per-merchant API rate limits (token bucket); merchants without a row get the defaults
-- (PAYFLOW_RATE_LIMIT_PER_SECOND, PAYFLOW_RATE_LIMIT_BURST).
CREATE TABLE merchant_limits (
    merchant_id     text PRIMARY KEY REFERENCES merchants (id),
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
    burst           integer NOT NULL CHECK (burst >= 1)
);
