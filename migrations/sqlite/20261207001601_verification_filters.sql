-- GET /v1/verifications filters by verdict label and detection band: copied out of the report
-- JSON into indexed columns (NULL for reports without them). insert_verification fills them.
ALTER TABLE verifications ADD COLUMN verdict TEXT NULL;
ALTER TABLE verifications ADD COLUMN band TEXT NULL;
UPDATE verifications SET
    verdict = json_extract(report, '$.verdict.label'),
    band = json_extract(report, '$.detection.band')
WHERE json_valid(report);
CREATE INDEX verifications_created_at_idx ON verifications (created_at, id);
CREATE INDEX verifications_verdict_idx ON verifications (verdict, created_at);
