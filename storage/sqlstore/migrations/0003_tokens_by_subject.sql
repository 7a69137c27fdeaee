-- A user's tokens for a client: the applications a user has authorized,
-- and revoking one of them.
CREATE INDEX {{.P}}tokens_subject ON {{.P}}tokens (subject, client_id);
