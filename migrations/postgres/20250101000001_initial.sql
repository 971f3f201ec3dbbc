-- Hallmark initial schema (PostgreSQL).
-- Portable conventions shared with migrations/sqlite (see store/README.md):
--   * ids are TEXT (UUID v7 strings),
--   * timestamps are TEXT, RFC 3339 UTC with millisecond precision and a 'Z'
--     suffix (e.g. 2025-01-31T12:00:00.123Z) so they sort lexicographically,
--   * JSON documents are TEXT, raw bytes are BYTEA.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,              -- comma-separated
    created_at  TEXT NOT NULL,
    revoked_at  TEXT NULL
);

CREATE TABLE assets (
    id                  TEXT PRIMARY KEY,
    created_at          TEXT NOT NULL,
    media_type          TEXT NOT NULL,      -- MIME type
    input_sha256        TEXT NULL,          -- lowercase hex
    output_sha256       TEXT NOT NULL,      -- lowercase hex
    watermark_payload   TEXT NULL UNIQUE,   -- 16 lowercase hex characters
    manifest_label      TEXT NULL,
    generator           TEXT NOT NULL,
    model               TEXT NOT NULL,
    model_version       TEXT NOT NULL,
    digital_source_type TEXT NOT NULL,
    created_by          TEXT NOT NULL       -- api key id
);
CREATE INDEX assets_output_sha256_idx ON assets (output_sha256);
CREATE INDEX assets_input_sha256_idx ON assets (input_sha256);
CREATE INDEX assets_created_at_idx ON assets (created_at);

CREATE TABLE manifests (
    label       TEXT PRIMARY KEY,
    asset_id    TEXT NOT NULL REFERENCES assets (id),
    format      TEXT NOT NULL,              -- MIME type of the manifest store
    store_bytes BYTEA NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX manifests_asset_id_idx ON manifests (asset_id);

CREATE TABLE verifications (
    id           TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    asset_id     TEXT NULL,
    requested_by TEXT NOT NULL,
    report       TEXT NOT NULL               -- JSON
);
CREATE INDEX verifications_sha256_idx ON verifications (sha256);
CREATE INDEX verifications_asset_id_idx ON verifications (asset_id);

-- The tamper-evident log. `body` is the RFC 8785 canonical JSON exactly as
-- hashed; entry_hash = SHA-256(prev_hash bytes || body).
CREATE TABLE audit_entries (
    seq        BIGINT PRIMARY KEY CHECK (seq >= 1),
    prev_hash  TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE decisions (
    id              TEXT PRIMARY KEY,
    verification_id TEXT NOT NULL REFERENCES verifications (id),
    action          TEXT NOT NULL,
    policy          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    audit_seq       BIGINT NOT NULL UNIQUE  -- audit_entries.seq (no FK: the log is verified, not constrained)
);
CREATE INDEX decisions_verification_id_idx ON decisions (verification_id);
