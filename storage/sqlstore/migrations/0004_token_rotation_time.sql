-- When a refresh token was rotated by a refresh (microseconds; 0: never,
-- or no longer the grant's most recent rotation, or the grant revoked):
-- what a provider's reuse grace period counts from.
ALTER TABLE {{.P}}tokens ADD COLUMN rotated_at BIGINT NOT NULL DEFAULT 0;
