// Package apikey issues and verifies API keys: the seed's "Authorization:
// Bearer your_api_key_here", with permissions (scopes), separate test and
// live keys, rotation, immediate revocation and access monitoring.
//
// # Keys
//
// A key looks like gate_live_4Qm…Xk2p9Z: a configurable prefix, the
// environment, 192 random bits in base62 and a CRC32 checksum, so a
// mistyped key is refused without a lookup and secret scanners can find
// leaked ones. Only a SHA-256 (or, with a pepper, HMAC-SHA-256) of the key
// is stored; [Manager.Create] returns the key once as a [Secret], which
// redacts itself in logs. [Display] gives the form dashboards show
// (gate_live_…9Z2p) and [IDFor] the public id.
//
// # Verifying
//
// [Manager] implements gatehouse.Authenticator: put it in a
// gatehouse.Chain. It declines credentials without its prefix (so OAuth
// tokens pass to the next authenticator) and answers 401 with the reason —
// MALFORMED, NOT_FOUND, EXPIRED, REVOKED, USAGE_EXCEEDED — for its own.
// Verified keys are cached for Config.CacheTTL (5 s), so the hot path reads
// no storage; revocation through the same Manager is immediate, and other
// instances sharing the store see it within CacheTTL, or at once when
// they share a Config.Invalidator (sqlstore's, on PostgreSQL). Last-used times and
// hourly and daily request counts are written in batches every
// Config.FlushInterval, never on the request path; Close writes the last
// batch. A process killed without Close loses at most one interval of
// these statistics, never a key's uses budget, which each request spends
// in the store (ConsumeAPIKeyUses) before it is admitted.
//
// # Sandbox
//
// The principal carries gatehouse.Live or gatehouse.Test from the key; an
// application keeps test data apart by filtering on it.
package apikey
