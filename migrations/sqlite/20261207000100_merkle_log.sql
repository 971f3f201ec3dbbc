-- The audit log becomes an RFC 9162 transparency log (see docs/AUDIT_LOG.md).
--
-- audit_leaves: leaf i of the Merkle tree. body is the entry's RFC 8785 canonical
-- JSON exactly as hashed; leaf_hash = hex SHA-256(0x00 || body). The entries of the
-- former hash chain become the first leaves, in order (leaf_index = seq - 1, same
-- body); their leaf_hash is NULL until the sequencer computes it on start-up (SQLite
-- has no SHA-256 in SQL), before it signs the first checkpoint over them.
CREATE TABLE audit_leaves (
    leaf_index INTEGER PRIMARY KEY NOT NULL CHECK (leaf_index >= 0),
    leaf_hash  TEXT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

INSERT INTO audit_leaves (leaf_index, leaf_hash, body, created_at)
    SELECT seq - 1, NULL, body, created_at FROM audit_entries ORDER BY seq;

-- Every signed checkpoint (C2SP tlog-checkpoint in a signed note), one per batch.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY NOT NULL CHECK (tree_size >= 1),
    root_hash  TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- The chain table is kept, read-only, under a name that says so: nothing is lost, and
-- the sequencer re-verifies it before it adopts its entries as leaves.
ALTER TABLE audit_entries RENAME TO legacy_audit_chain;
