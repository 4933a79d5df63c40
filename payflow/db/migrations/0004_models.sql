-- The fraud model registry, its promotion history, merchants' risk thresholds and the feature
-- log (every decision's feature vector, so training uses exactly what was seen at decision time).

-- A trained model: the skops artifact (never pickle) and what it takes to trust and reproduce it.
CREATE TABLE fraud_models (
    version               integer PRIMARY KEY CHECK (version > 0),
    artifact              bytea NOT NULL,
    artifact_format       text NOT NULL DEFAULT 'skops' CHECK (artifact_format = 'skops'),
    feature_names         jsonb NOT NULL,      -- the input vector's order
    metrics               jsonb NOT NULL DEFAULT '{}',
    training_window_start timestamptz NOT NULL,
    training_window_end   timestamptz NOT NULL,
    data_fingerprint      text NOT NULL,       -- SHA-256 of the training rows and labels
    code_version          text NOT NULL,       -- git commit (or package version) that trained it
    description           text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (training_window_start <= training_window_end)
);

-- Append-only: the newest row names the champion every worker scores with.
CREATE TABLE fraud_model_promotions (
    seq              bigserial PRIMARY KEY,
    version          integer NOT NULL REFERENCES fraud_models (version),
    previous_version integer REFERENCES fraud_models (version),
    action           text NOT NULL CHECK (action IN ('promote', 'rollback')),
    actor            text NOT NULL,
    promoted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE RULE fraud_model_promotions_no_update AS ON UPDATE TO fraud_model_promotions DO INSTEAD NOTHING;
CREATE RULE fraud_model_promotions_no_delete AS ON DELETE TO fraud_model_promotions DO INSTEAD NOTHING;

-- A merchant's thresholds on the 0-100 fraud score; merchants without a row use the defaults
-- (review at 70, decline at 90: models.decision).
CREATE TABLE risk_policies (
    merchant_id      text PRIMARY KEY REFERENCES merchants (id),
    review_threshold smallint NOT NULL DEFAULT 70,
    block_threshold  smallint NOT NULL DEFAULT 90,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (0 <= review_threshold AND review_threshold <= block_threshold
           AND block_threshold <= 100)
);

-- One row per decided payment: the first decision's features (a redelivered request's second
-- decision is ignored, as the ledger ignores it).
CREATE TABLE feature_log (
    payment_id    text PRIMARY KEY,
    merchant_id   text NOT NULL,
    message_id    text NOT NULL,           -- the payments.decisions message carrying the decision
    requested_at  timestamptz NOT NULL,    -- event time of the request: the point in time
    model_version text NOT NULL,
    features      jsonb NOT NULL,
    fraud_score   smallint NOT NULL CHECK (fraud_score BETWEEN 0 AND 100),
    outcome       text NOT NULL CHECK (outcome IN ('approve', 'review', 'decline')),
    degraded      boolean NOT NULL,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feature_log_requested ON feature_log (requested_at);
