-- How many changes an API key, a webhook subscription and an OAuth client
-- have had: an
-- update names the version it read and fails when another change came
-- first, so a revocation, a rotation or a new secret is never undone by
-- an update made from an older read.
ALTER TABLE {{.P}}api_keys ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {{.P}}subscriptions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {{.P}}clients ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
