-- Idempotency-Key on POST /v1/decisions and /v1/decisions/batch (see docs/AUDIT_LOG.md).
-- One row per (API key, Idempotency-Key) that recorded decisions, written in the same
-- transaction as the decisions and their leaves. A retry with the same key and the same
-- request (fingerprint = hex SHA-256 of the normalised request) gets the original receipts
-- back: decisions audit_seq [first_seq, first_seq + entry_count), proved against the
-- checkpoint of tree_size. Another request under the same key is refused.
CREATE TABLE decision_idempotency (
    api_key_id  TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seq   BIGINT NOT NULL CHECK (first_seq >= 1),
    entry_count BIGINT NOT NULL CHECK (entry_count >= 1),
    tree_size   BIGINT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (api_key_id, idem_key)
);
