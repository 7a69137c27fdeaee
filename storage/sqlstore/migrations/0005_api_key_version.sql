-- How many changes UpdateAPIKey made to a key: an update names the version
-- it read and fails when another change came first, so a revocation or a
-- rotation is never undone by an update made from an older read.
ALTER TABLE {{.P}}api_keys ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
