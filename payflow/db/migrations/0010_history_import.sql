-- Historical payments loaded by `payflow import` and replayed through the stream worker by
-- `payflow replay` (ingest/history.py, payflow/replay.py). They are training data, not money:
-- nothing here touches the ledger, and the merchant ids are the file's own, not `merchants` rows.

-- One row per import run: which file, its content hash, and what the run changed.
CREATE TABLE history_imports (
    id            bigserial PRIMARY KEY,
    file_name     text NOT NULL,
    file_sha256   text NOT NULL CHECK (file_sha256 ~ '^[0-9a-f]{64}$'),
    rows_read     integer NOT NULL CHECK (rows_read >= 0),
    rows_inserted integer NOT NULL CHECK (rows_inserted >= 0),
    rows_updated  integer NOT NULL CHECK (rows_updated >= 0),
    rows_rejected integer NOT NULL CHECK (rows_rejected >= 0),
    imported_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (rows_inserted + rows_updated + rows_rejected <= rows_read)
);

-- One historical payment. The payment id is the file's, or derived from the row's content, so a
-- re-import of the same file finds its rows again instead of adding copies.
CREATE TABLE history_payments (
    payment_id   text PRIMARY KEY CHECK (length(payment_id) BETWEEN 1 AND 200),
    import_id    bigint NOT NULL REFERENCES history_imports (id),
    line         integer NOT NULL CHECK (line > 0),  -- where it is in its file: orders ties
    occurred_at  timestamptz NOT NULL,               -- event time of the payment
    merchant_id  text NOT NULL CHECK (merchant_id <> ''),
    card         text NOT NULL CHECK (card <> ''),   -- card id or fingerprint, never a number
    terminal_id  text,
    customer_id  text,
    amount_minor bigint NOT NULL CHECK (amount_minor BETWEEN 1 AND 99999999),
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    ip_address   text,
    device_id    text,
    country      char(2) CHECK (country ~ '^[A-Z]{2}$'),
    is_fraud     boolean,                            -- null: the file gave no label
    labelled_at  timestamptz,                        -- when the fraud label became known
    CHECK ((labelled_at IS NOT NULL) = (is_fraud IS TRUE)),
    CHECK (labelled_at IS NULL OR labelled_at >= occurred_at)
);
CREATE INDEX history_payments_replay_order ON history_payments (occurred_at, import_id, line);
CREATE INDEX history_payments_labels ON history_payments (labelled_at) WHERE is_fraud;
