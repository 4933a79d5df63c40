-- The double-entry ledger: accounts with balances by type, append-only journal entries whose
-- postings balance (checked by the database at commit), two-phase authorization holds,
-- refunds, disputes, fraud labels, pricing, settlements, payouts and the audit log.

-- Every account, created on first use. Balances are kept by type (TigerBeetle's model):
-- posted debits/credits from journal postings, pending debits/credits from open holds.
CREATE TABLE accounts (
    name            text PRIMARY KEY,          -- e.g. merchant:mer_x:pending:USD
    owner           text NOT NULL,             -- 'platform' or a merchant id
    kind            text NOT NULL,
    currency        char(3) NOT NULL,
    normal          text NOT NULL CHECK (normal IN ('debit', 'credit')),
    non_negative    boolean NOT NULL,
    posted_debits   bigint NOT NULL DEFAULT 0 CHECK (posted_debits >= 0),
    posted_credits  bigint NOT NULL DEFAULT 0 CHECK (posted_credits >= 0),
    pending_debits  bigint NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
    pending_credits bigint NOT NULL DEFAULT 0 CHECK (pending_credits >= 0),
    -- Accounts constrained to stay on their normal side never go negative, posted or pending.
    CHECK (NOT non_negative OR (
        CASE normal WHEN 'debit' THEN posted_debits - posted_credits
                    ELSE posted_credits - posted_debits END) >= 0)
);
CREATE INDEX accounts_owner ON accounts (owner, currency);

CREATE TABLE journal_entries (
    id          bigserial PRIMARY KEY,
    message_id  text NOT NULL,      -- the Kafka message (or settlement run) that caused it
    kind        text NOT NULL,
    currency    char(3) NOT NULL,
    payment_id  text REFERENCES payments (id),
    settles_on  date,               -- when its merchant-pending part becomes available
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_payment ON journal_entries (payment_id);
CREATE INDEX journal_entries_message ON journal_entries (message_id);

CREATE TABLE postings (
    id        bigserial PRIMARY KEY,
    entry_id  bigint NOT NULL REFERENCES journal_entries (id),
    account   text NOT NULL REFERENCES accounts (name),
    amount    bigint NOT NULL CHECK (amount <> 0),   -- positive debit, negative credit
    currency  char(3) NOT NULL
);
CREATE INDEX postings_entry ON postings (entry_id);
CREATE INDEX postings_account ON postings (account, entry_id);

-- Every entry balances, per currency: checked once per entry at commit (deferred), so the
-- postings of one entry may be inserted in any order within the transaction.
CREATE FUNCTION check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs integer;
    currencies integer;
BEGIN
    SELECT coalesce(sum(amount), 0), count(*), count(DISTINCT currency)
      INTO total, legs, currencies
      FROM postings WHERE entry_id = NEW.entry_id;
    IF total <> 0 OR legs < 2 OR currencies <> 1 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced (sum %, % postings, % currencies)',
            NEW.entry_id, total, legs, currencies USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();

-- The journal is append-only: corrections are new, reversing entries.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Authorization holds: two-phase pending transfers, resolved exactly once.
CREATE TABLE holds (
    payment_id    text PRIMARY KEY REFERENCES payments (id),
    debit         text NOT NULL REFERENCES accounts (name),
    credit        text NOT NULL REFERENCES accounts (name),
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      char(3) NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'posted', 'voided')),
    posted_amount bigint NOT NULL DEFAULT 0 CHECK (posted_amount BETWEEN 0 AND amount),
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    CHECK ((status = 'pending') = (resolved_at IS NULL))
);
CREATE FUNCTION hold_resolves_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'hold for % is already %', OLD.payment_id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER holds_resolve_once BEFORE UPDATE ON holds
    FOR EACH ROW EXECUTE FUNCTION hold_resolves_once();

CREATE TABLE refunds (
    id          text PRIMARY KEY,
    payment_id  text NOT NULL REFERENCES payments (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    char(3) NOT NULL,
    reason      text CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);

CREATE TABLE disputes (
    id          text PRIMARY KEY,
    payment_id  text NOT NULL UNIQUE REFERENCES payments (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    char(3) NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Ground truth for the fraud model: a payment is fraudulent when disputed as such.
CREATE TABLE fraud_labels (
    payment_id  text PRIMARY KEY REFERENCES payments (id),
    is_fraud    boolean NOT NULL,
    source      text NOT NULL,
    labelled_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE merchant_pricing (
    merchant_id text NOT NULL REFERENCES merchants (id),
    currency    char(3) NOT NULL,
    percent_bps integer NOT NULL CHECK (percent_bps BETWEEN 0 AND 10000),
    fixed_minor bigint NOT NULL CHECK (fixed_minor >= 0),
    PRIMARY KEY (merchant_id, currency)
);

-- Which entries a settlement moved to available: the settlement report's rows.
CREATE TABLE settlements (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL REFERENCES merchants (id),
    currency        char(3) NOT NULL,
    settlement_date date NOT NULL,
    net_amount      bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, currency, settlement_date)
);
CREATE TABLE settlement_items (
    entry_id      bigint PRIMARY KEY REFERENCES journal_entries (id),
    settlement_id text NOT NULL REFERENCES settlements (id)
);
CREATE INDEX settlement_items_settlement ON settlement_items (settlement_id);

CREATE TABLE payouts (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL REFERENCES merchants (id),
    currency        char(3) NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    status          text NOT NULL CHECK (status IN ('pending', 'paid')),
    settlement_date date NOT NULL,
    settlement_id   text REFERENCES settlements (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    paid_at         timestamptz,
    UNIQUE (merchant_id, currency, settlement_date)
);

-- Who changed what, when: every state change and every human action. Append-only.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    merchant_id text,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    action      text NOT NULL,
    change      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, id);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

ALTER TABLE payments
    ADD COLUMN method_type      text NOT NULL DEFAULT 'card',
    ADD COLUMN card_fingerprint text,
    ADD COLUMN disputed_amount  bigint NOT NULL DEFAULT 0 CHECK (disputed_amount >= 0),
    ADD COLUMN fee_amount       bigint NOT NULL DEFAULT 0 CHECK (fee_amount >= 0),
    ADD COLUMN fee_returned     bigint NOT NULL DEFAULT 0 CHECK (fee_returned >= 0),
    ADD COLUMN clears_at        timestamptz,   -- bank transfers: when the sandbox clears it
    ADD COLUMN auto_dispute_at  timestamptz,   -- the sandbox's always-disputed test card
    ADD CONSTRAINT refunds_and_disputes_within_capture
        CHECK (refunded_amount + disputed_amount <= captured_amount);
CREATE INDEX payments_clearing ON payments (clears_at) WHERE clears_at IS NOT NULL;
CREATE INDEX payments_auto_dispute ON payments (auto_dispute_at) WHERE auto_dispute_at IS NOT NULL;

CREATE OR REPLACE VIEW transactions AS
SELECT p.id, p.merchant_id, p.amount, p.currency::text AS currency, p.captured_amount,
       p.refunded_amount, p.status, p.fraud_score, p.risk_level, p.fraud_flags, p.decline_code,
       p.processor_ref, p.payment_method, p.description, p.customer, p.metadata,
       p.created_at, p.updated_at,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                         'id', r.id, 'amount', r.amount, 'reason', r.reason,
                         'created_at', r.created_at) ORDER BY r.created_at, r.id)
                 FROM refunds r WHERE r.payment_id = p.id), '[]'::jsonb) AS refunds,
       p.disputed_amount
FROM payments p;
