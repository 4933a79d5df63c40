-- Foundation: merchants and their API keys, tokenized payment methods, payments (the system of
-- record for payment state), idempotency keys, the per-message apply log and the event outbox.

CREATE TABLE merchants (
    id               text PRIMARY KEY,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email            text NOT NULL UNIQUE,
    default_currency char(3) NOT NULL DEFAULT 'USD',
    password_hash    text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Only a hash of each secret key is stored; `prefix` (the first characters after sk_test_) finds
-- the row, the hash comparison (constant time, in Python) authenticates.
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    prefix      text NOT NULL UNIQUE,
    key_hash    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

-- A tokenized card or bank account. The full number exists only as AES-GCM ciphertext.
CREATE TABLE payment_methods (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    type        text NOT NULL CHECK (type IN ('card', 'bank_transfer')),
    summary     jsonb NOT NULL,
    fingerprint text,
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_methods_merchant ON payment_methods (merchant_id);

CREATE TABLE payments (
    id                text PRIMARY KEY,
    merchant_id       text NOT NULL REFERENCES merchants (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          char(3) NOT NULL,
    captured_amount   bigint NOT NULL DEFAULT 0 CHECK (captured_amount >= 0),
    refunded_amount   bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    status            text NOT NULL CHECK (status IN
                          ('pending', 'authorized', 'captured', 'refunded', 'voided', 'failed')),
    capture           boolean NOT NULL DEFAULT true,
    fraud_score       smallint CHECK (fraud_score BETWEEN 0 AND 100),
    risk_level        text CHECK (risk_level IN ('low', 'medium', 'high')),
    fraud_flags       jsonb NOT NULL DEFAULT '[]',
    decline_code      text,
    processor_ref     text,
    payment_method_id text NOT NULL REFERENCES payment_methods (id),
    payment_method    jsonb NOT NULL,
    description       text,
    customer          jsonb,
    metadata          jsonb NOT NULL DEFAULT '{}',
    request           jsonb NOT NULL,  -- the request message: the outbox for payments.requests
    request_sent_at   timestamptz,     -- last time it was sent to Kafka (null: not yet)
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (captured_amount <= amount),
    CHECK (refunded_amount <= captured_amount)
);
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at DESC, id DESC);
CREATE INDEX payments_pending ON payments (request_sent_at) WHERE status = 'pending';

-- Idempotency-Key records, kept at least 24 h (see `payflow db prune`). The first request with a
-- key stores its fingerprint; the answer is stored when it is known and replayed byte for byte.
CREATE TABLE idempotency_keys (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    method          text NOT NULL,
    path            text NOT NULL,
    resource_id     text,            -- the object the first attempt created (recovery point)
    response_status smallint,
    response_body   bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Every consumed message that changed state, so redelivery is applied at most once.
CREATE TABLE processed_messages (
    message_id   text PRIMARY KEY,
    topic        text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox of public events: written with the state change that causes them,
-- published to their topic after the commit (again after a crash: their ids never change).
-- It is also the merchant's event history (GET /v1/events, a payment's timeline).
CREATE TABLE events (
    id           text PRIMARY KEY,
    seq          bigserial UNIQUE,
    merchant_id  text NOT NULL REFERENCES merchants (id),
    topic        text NOT NULL,          -- catalog name, without the deployment's prefix
    subject      text NOT NULL,          -- the Kafka key: payment id, or payout id
    type         text NOT NULL,          -- e.g. payment.captured.v1
    body         jsonb NOT NULL,         -- the whole message, as published
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX events_merchant ON events (merchant_id, seq DESC);
CREATE INDEX events_subject ON events (subject, seq);
CREATE INDEX events_unpublished ON events (seq) WHERE published_at IS NULL;

-- The transaction object of the API and of payments.events, column for column
-- (ingest.contracts.Transaction).
CREATE VIEW transactions AS
SELECT p.id, p.merchant_id, p.amount, p.currency::text AS currency, p.captured_amount,
       p.refunded_amount, p.status, p.fraud_score, p.risk_level, p.fraud_flags, p.decline_code,
       p.processor_ref, p.payment_method, p.description, p.customer, p.metadata,
       p.created_at, p.updated_at
FROM payments p;
