-- Review queue: GET /v1/review/next leases one undecided verification to one moderator
-- until expires_at (RFC 3339 text). A decision on the verification ends the lease.
CREATE TABLE review_leases (
    verification_id TEXT PRIMARY KEY NOT NULL REFERENCES verifications (id),
    moderator       TEXT NOT NULL,
    expires_at      TEXT NOT NULL
) STRICT;
