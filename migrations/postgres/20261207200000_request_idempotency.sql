-- Idempotency-Key on POST /v1/sign and /v1/generate (IETF draft-ietf-httpapi-idempotency-key-header).
-- A request with a key first claims its row ('pending'); the signed asset, its manifest and the
-- row's completion ('done', with the response to replay) are written in one transaction, so a
-- retry either replays the first response or, if the first attempt failed or died before that
-- transaction, signs anew. A pending row older than the longest request is taken over by a retry.
CREATE TABLE request_idempotency (
    api_key_id    TEXT NOT NULL,
    route         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    response_meta TEXT,
    response_body BYTEA,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (api_key_id, route, idem_key)
);
CREATE INDEX request_idempotency_created ON request_idempotency (created_at);
