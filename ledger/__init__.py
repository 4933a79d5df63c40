"""The ledger: payment state machine and postings (pure), and the consumer that commits them."""
