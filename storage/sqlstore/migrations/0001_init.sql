-- Gatehouse schema, version 1. Rendered with text/template: {{.P}} is the
-- table prefix; {{.Bytes}} and {{.Bool}} are the dialect's types.
-- Times are Unix microseconds, durations nanoseconds, lists JSON text.

CREATE TABLE {{.P}}organisations (
    id            TEXT PRIMARY KEY,
    domain_prefix TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    plan          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE {{.P}}users (
    id              TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (organisation_id, email_key)
);

CREATE TABLE {{.P}}clients (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL,
    name            TEXT NOT NULL,
    organisation_id TEXT NOT NULL,
    redirect_uris   TEXT NOT NULL,
    grant_types     TEXT NOT NULL,
    response_types  TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    public          {{.Bool}} NOT NULL,
    access_ttl      BIGINT NOT NULL,
    refresh_ttl     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX {{.P}}clients_org ON {{.P}}clients (organisation_id, created_at, id);

CREATE TABLE {{.P}}tokens (
    kind            TEXT NOT NULL,
    signature       TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    organisation_id TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    requested_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    active          {{.Bool}} NOT NULL,
    data            {{.Bytes}},
    PRIMARY KEY (kind, signature)
);
CREATE INDEX {{.P}}tokens_request ON {{.P}}tokens (kind, request_id);
CREATE INDEX {{.P}}tokens_expiry ON {{.P}}tokens (expires_at);

CREATE TABLE {{.P}}consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

CREATE TABLE {{.P}}api_keys (
    id              TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    organisation_id TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    display         TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    environment     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    last_used_ip    TEXT NOT NULL,
    rate_limit      TEXT NOT NULL,
    uses_limited    {{.Bool}} NOT NULL,
    uses_remaining  BIGINT NOT NULL,
    refill_amount   BIGINT NOT NULL,
    refill_interval BIGINT NOT NULL,
    last_refill_at  BIGINT NOT NULL,
    metadata        TEXT NOT NULL
);
CREATE INDEX {{.P}}api_keys_org ON {{.P}}api_keys (organisation_id, created_at, id);

CREATE TABLE {{.P}}api_key_usage (
    key_id      TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket      BIGINT NOT NULL,
    requests    BIGINT NOT NULL,
    PRIMARY KEY (key_id, granularity, bucket)
);

CREATE TABLE {{.P}}subscriptions (
    id                         TEXT PRIMARY KEY,
    organisation_id            TEXT NOT NULL,
    environment                TEXT NOT NULL,
    url                        TEXT NOT NULL,
    events                     TEXT NOT NULL,
    secret                     TEXT NOT NULL,
    previous_secret            TEXT NOT NULL,
    previous_secret_expires_at BIGINT NOT NULL,
    enabled                    {{.Bool}} NOT NULL,
    disabled_reason            TEXT NOT NULL,
    failing_since              BIGINT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
CREATE INDEX {{.P}}subscriptions_org ON {{.P}}subscriptions (organisation_id, created_at, id);

CREATE TABLE {{.P}}events (
    id              TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    environment     TEXT NOT NULL,
    type            TEXT NOT NULL,
    payload         {{.Bytes}} NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE {{.P}}deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    organisation_id  TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_id         TEXT NOT NULL,
    lease_owner      TEXT NOT NULL,
    lease_expires_at BIGINT NOT NULL,
    last_status_code INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX {{.P}}deliveries_due ON {{.P}}deliveries (status, next_attempt_at);
CREATE INDEX {{.P}}deliveries_sub ON {{.P}}deliveries (subscription_id, created_at);

CREATE TABLE {{.P}}attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL,
    at            BIGINT NOT NULL,
    duration_ns   BIGINT NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    error         TEXT NOT NULL
);
CREATE INDEX {{.P}}attempts_delivery ON {{.P}}attempts (delivery_id, at);
