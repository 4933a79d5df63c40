-- Dashboard: login users, and the analytics rollups (materialized tables) the dashboard reads.
--
-- The rollups are derived data, rebuilt from payments.events and payments.decisions by the
-- `payflow analytics` consumer (streams/rollups/). They carry no card data and no foreign keys
-- to the system of record, so maintaining them never takes locks the ledger needs.

-- People who sign in to the dashboard. A `merchant` user sees its merchant only; `analyst` and
-- `admin` users may switch between merchants. Passwords are argon2id hashes (api/passwords.py).
CREATE TABLE dashboard_users (
    id            text PRIMARY KEY,
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    role          text NOT NULL CHECK (role IN ('merchant', 'analyst', 'admin')),
    merchant_id   text REFERENCES merchants (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    CHECK (role <> 'merchant' OR merchant_id IS NOT NULL)
);
CREATE UNIQUE INDEX dashboard_users_email ON dashboard_users (lower(email));
CREATE INDEX dashboard_users_merchant ON dashboard_users (merchant_id);

-- Per merchant, currency and UTC hour or day. Amounts are integer minor units of `currency`;
-- currencies are never mixed. Event time decides the bucket:
--   payment_count   payments decided (approved + declined)
--   gross_volume    amounts of approved payments (authorized, captured or not)
--   captured/refunded/disputed_amount  money captured, refunded and charged back in the bucket
--   fee_amount      processing fees (0 until the ledger publishes fee events)
--   net_amount      captured - refunded - disputed - fees
--   approvals, declines, fraud_declines (declined as `fraudulent`), reviews (risk outcome
--   `review`), disputes, refunds; score_histogram: decided payments per fraud-score decile
--   (0-9, 10-19, ..., 90-100).
CREATE TABLE analytics_rollups (
    merchant_id     text NOT NULL,
    currency        char(3) NOT NULL,
    granularity     text NOT NULL CHECK (granularity IN ('hour', 'day')),
    bucket_start    timestamptz NOT NULL,
    payment_count   bigint NOT NULL DEFAULT 0,
    gross_volume    bigint NOT NULL DEFAULT 0,
    captured_amount bigint NOT NULL DEFAULT 0,
    refunded_amount bigint NOT NULL DEFAULT 0,
    disputed_amount bigint NOT NULL DEFAULT 0,
    fee_amount      bigint NOT NULL DEFAULT 0,
    net_amount      bigint GENERATED ALWAYS AS
                        (captured_amount - refunded_amount - disputed_amount - fee_amount) STORED,
    approvals       bigint NOT NULL DEFAULT 0,
    declines        bigint NOT NULL DEFAULT 0,
    fraud_declines  bigint NOT NULL DEFAULT 0,
    reviews         bigint NOT NULL DEFAULT 0,
    disputes        bigint NOT NULL DEFAULT 0,
    refunds         bigint NOT NULL DEFAULT 0,
    average_ticket  bigint GENERATED ALWAYS AS
                        (CASE WHEN approvals > 0 THEN gross_volume / approvals ELSE 0 END) STORED,
    score_histogram bigint[] NOT NULL DEFAULT '{0,0,0,0,0,0,0,0,0,0}'
                        CHECK (cardinality(score_histogram) = 10),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, currency, granularity, bucket_start),
    CHECK (bucket_start = date_trunc(granularity, bucket_start AT TIME ZONE 'UTC')
                          AT TIME ZONE 'UTC')
);

-- Element-wise sum of two histograms of equal length (the rollup upsert adds a batch's counts).
CREATE FUNCTION analytics_add_histograms(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(x + y ORDER BY i) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i)
$$;

-- Decided payments per fraud flag and UTC day, for the Risk page's top flags.
CREATE TABLE analytics_daily_flags (
    merchant_id text NOT NULL,
    day         date NOT NULL,
    flag        text NOT NULL CHECK (length(flag) BETWEEN 1 AND 200),
    payments    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day, flag)
);

-- Messages the analytics consumer has counted, written in the same transaction as the rollup
-- upserts: a redelivered message changes nothing. Rows older than the topics' retention are
-- pruned (they can no longer be redelivered).
CREATE TABLE analytics_processed_messages (
    message_id   text PRIMARY KEY,
    topic        text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_processed_messages_time ON analytics_processed_messages (processed_at);
