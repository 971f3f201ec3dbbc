-- Hallmark initial schema (SQLite). Mirrors migrations/postgres; see
-- store/README.md. STRICT tables make SQLite enforce the declared types.
--   * ids are TEXT (UUID v7 strings),
--   * timestamps are TEXT, RFC 3339 UTC with millisecond precision and a 'Z'
--     suffix (e.g. 2025-01-31T12:00:00.123Z) so they sort lexicographically,
--   * JSON documents are TEXT, raw bytes are BLOB.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,              -- comma-separated
    created_at  TEXT NOT NULL,
    revoked_at  TEXT NULL
) STRICT;

CREATE TABLE assets (
    id                  TEXT PRIMARY KEY NOT NULL,
    created_at          TEXT NOT NULL,
    media_type          TEXT NOT NULL,
    input_sha256        TEXT NULL,
    output_sha256       TEXT NOT NULL,
    watermark_payload   TEXT NULL UNIQUE,
    manifest_label      TEXT NULL,
    generator           TEXT NOT NULL,
    model               TEXT NOT NULL,
    model_version       TEXT NOT NULL,
    digital_source_type TEXT NOT NULL,
    created_by          TEXT NOT NULL
) STRICT;
CREATE INDEX assets_output_sha256_idx ON assets (output_sha256);
CREATE INDEX assets_input_sha256_idx ON assets (input_sha256);
CREATE INDEX assets_created_at_idx ON assets (created_at);

CREATE TABLE manifests (
    label       TEXT PRIMARY KEY NOT NULL,
    asset_id    TEXT NOT NULL REFERENCES assets (id),
    format      TEXT NOT NULL,
    store_bytes BLOB NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX manifests_asset_id_idx ON manifests (asset_id);

CREATE TABLE verifications (
    id           TEXT PRIMARY KEY NOT NULL,
    created_at   TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    asset_id     TEXT NULL,
    requested_by TEXT NOT NULL,
    report       TEXT NOT NULL
) STRICT;
CREATE INDEX verifications_sha256_idx ON verifications (sha256);
CREATE INDEX verifications_asset_id_idx ON verifications (asset_id);

CREATE TABLE audit_entries (
    seq        INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    prev_hash  TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE decisions (
    id              TEXT PRIMARY KEY NOT NULL,
    verification_id TEXT NOT NULL REFERENCES verifications (id),
    action          TEXT NOT NULL,
    policy          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    decided_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    audit_seq       INTEGER NOT NULL UNIQUE
) STRICT;
CREATE INDEX decisions_verification_id_idx ON decisions (verification_id);
