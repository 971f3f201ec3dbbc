-- API key lifecycle (issue 20): an optional expiry, the last time a key authenticated (written
-- at most once a minute per key and process), and the `admin` scope for the bootstrap key that
-- predates it (key management: GET/POST /v1/keys). Timestamps follow the initial schema's
-- convention (RFC 3339 UTC text, millisecond precision, 'Z').
ALTER TABLE api_keys ADD COLUMN expires_at TEXT NULL;
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT NULL;
UPDATE api_keys SET scopes = scopes || ',admin'
    WHERE name = 'bootstrap-admin' AND revoked_at IS NULL;
