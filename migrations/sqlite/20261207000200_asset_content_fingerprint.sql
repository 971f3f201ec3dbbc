-- Content binding (issue 17): a robust perceptual fingerprint of the signed output, compared
-- with the candidate whenever a watermark names the asset. Text form of
-- hallmark_watermark::fingerprint (`i1.…` images, `a1.…` audio). NULL for assets signed
-- before this migration: their binding is reported as `unknown`.
ALTER TABLE assets ADD COLUMN content_fingerprint TEXT NULL;
