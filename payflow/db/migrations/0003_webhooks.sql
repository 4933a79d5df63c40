-- Webhooks: merchants' endpoints, one delivery per (event, endpoint) with its retry schedule,
-- and the log of every attempt. The schedule lives here (next_attempt_at), not in a process's
-- memory, so a crash or restart of any sender loses no retry.

-- An endpoint's signing secret ("whsec_...") is stored only as AES-256-GCM ciphertext sealed by
-- the vault (api/vault.py, PAYFLOW_VAULT_KEY) with the endpoint id as associated data; the sender
-- opens it to sign. During a rotation the previous secret keeps signing until its expiry.
CREATE TABLE webhook_endpoints (
    id                         text PRIMARY KEY,
    merchant_id                text NOT NULL REFERENCES merchants (id),
    url                        text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                text CHECK (length(description) <= 500),
    enabled_events             text[] NOT NULL CHECK (cardinality(enabled_events) >= 1),
    is_primary                 boolean NOT NULL DEFAULT false,  -- the dashboard's endpoint
    disabled_reason            text CHECK (disabled_reason IN ('manual', 'failing')),
    disabled_at                timestamptz,
    secret_ciphertext          bytea NOT NULL,
    previous_secret_ciphertext bytea,
    previous_secret_expires_at timestamptz,
    failing_since              timestamptz,  -- first failed attempt since the last success
    consecutive_failures       integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_success_at            timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    deleted_at                 timestamptz,  -- deleted endpoints stay for the delivery log
    CHECK ((disabled_reason IS NULL) = (disabled_at IS NULL)),
    CHECK ((previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, created_at DESC)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX webhook_endpoints_one_primary ON webhook_endpoints (merchant_id)
    WHERE is_primary AND deleted_at IS NULL;

-- One message to one endpoint. Its id is the `webhook-id` header, the same on every attempt; the
-- payload is the exact body, so a retry resends identical bytes. `next_attempt_at` is the
-- schedule: a sender claims a due delivery by moving it forward by a lease, so a sender that
-- dies mid-attempt leaves the delivery due again when the lease ends.
CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    merchant_id      text NOT NULL REFERENCES merchants (id),
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id),
    event_id         text NOT NULL,
    event_type       text NOT NULL,  -- without version: payment.captured
    event_created_at timestamptz NOT NULL,
    payload          bytea NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_status_code smallint,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_merchant ON webhook_deliveries (merchant_id, created_at DESC, id DESC);

-- Every attempt, append-only: what was sent where, what came back, and when the next try is.
CREATE TABLE webhook_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     text NOT NULL REFERENCES webhook_deliveries (id),
    merchant_id     text NOT NULL REFERENCES merchants (id),
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    event_id        text NOT NULL,
    attempt         integer NOT NULL CHECK (attempt >= 1),
    url             text NOT NULL,
    status_code     smallint,          -- null: no HTTP answer (timeout, refused, blocked)
    latency_ms      integer NOT NULL CHECK (latency_ms >= 0),
    response_body   text,              -- first characters of the answer
    error           text,              -- why there was no 2xx answer
    next_attempt_at timestamptz,       -- null: no retry (succeeded or dead-lettered)
    attempted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
