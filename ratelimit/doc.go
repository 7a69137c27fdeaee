// Package ratelimit enforces multi-window rate limits — the seed's 1000
// requests an hour with bursts of at most 100 a minute — and sends the
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers.
//
// # Semantics
//
// A [Policy] is one or more [Window]s ("1000/h,100/m"). Windows are fixed
// and aligned to the Unix epoch (a minute window is hh:mm:00–hh:mm+1:00
// UTC). A request of cost c is admitted only if every window of its policy
// has room for c; then c counts in every window. Precisely:
//
//   - no window ever admits more than its limit: within each aligned
//     window the admitted cost never exceeds Limit;
//   - a refused request consumes nothing in any window;
//   - Remaining is Limit minus the cost admitted in the current window, of
//     the window that will run out first (least remaining), and Reset is
//     when that window ends (Unix seconds, rounded up), at which point its
//     Remaining is Limit again;
//   - Retry-After on a 429 is the time until every window that lacked room
//     has reset.
//
// Because windows are aligned, a client can spend one window's limit just
// before a boundary and the next one's just after it: at most twice a
// window's limit in any span of its length. With the seed's policy the
// minute window caps that at 200 requests in two seconds across an hour
// boundary. A single token bucket (rate 1000/h, burst 100) does not meet the
// seed at all: it admits about 116 requests in the first minute and about
// 1100 in the first hour.
//
// # Backends
//
// [Memory] is sharded, exact, allocation-free for known keys, and evicts
// keys whose windows have all ended. [Redis] decides every window in one
// round trip with one Lua script, with Redis's clock, keys that expire with
// their window and a hash tag per principal (Redis Cluster). [Failover]
// wraps Redis with a failure mode: degrade to memory (the default), fail
// open, or fail closed (503), returning to Redis by itself.
//
// # Middleware
//
// [Middleware] keys requests by principal (API key; OAuth client and
// subject) or, when anonymous, by client address ([ClientIP]; X-Forwarded-For
// only from trusted proxies; an IPv6 address by its /64, [AddressKey]), resolves tiers and per-principal overrides,
// and answers 429 RATE_LIMITED in the error envelope with Retry-After.
//
// # Failed attempts
//
// [FailureBudget] counts only failures — credentials sent and refused,
// reported by gatehouse.ChainConfig.OnRefused — and answers 429 before the
// chain runs once a client has spent its budget. [Result.Exhausted] and
// [Refusal] are its parts, for a budget of another kind (the OAuth
// provider's failed sign-ins are one).
package ratelimit
