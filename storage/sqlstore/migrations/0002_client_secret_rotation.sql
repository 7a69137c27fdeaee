-- A client's secret before its last rotation, which still authenticates
-- it until previous_secret_expires_at (microseconds; 0: none).
ALTER TABLE {{.P}}clients ADD COLUMN previous_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE {{.P}}clients ADD COLUMN previous_secret_expires_at BIGINT NOT NULL DEFAULT 0;
