// Package gatehouse is the core of Gatehouse, an embeddable toolkit for the
// authentication and API-access layer of a public HTTP API. Every piece is
// plain net/http: a func(http.Handler) http.Handler or an http.Handler, so
// it works with http.ServeMux, chi and any router that speaks net/http.
//
// # Who is calling
//
// This package defines the [Principal] (subject, organisation, client or API
// key, scopes, environment, rate-limit policy), context accessors
// ([NewContext], [FromContext]), the [Authenticator] interface and [Chain],
// the middleware that tries authenticators in order and answers 401 in the
// JSON envelope when none accepts the request. [BearerToken] reads a bearer
// credential from the Authorization header (and, when allowed, the
// access_token query parameter).
//
// # Several instances
//
// [Invalidator] carries cache invalidations between the instances of a
// deployment, so that a key or token revoked on one is refused by all at
// once; storage/sqlstore provides one over PostgreSQL's LISTEN/NOTIFY (on
// SQLite, a table every process on the file reads), storage/redisinv one
// over Redis pub/sub for stores of your own, and apikey.Config and
// oauth.Config take it.
//
// # The packages
//
//   - apierror: the JSON error envelope, request ids, panic recovery, content
//     negotiation, per-request deadlines and a strict JSON body decoder.
//   - scope: scope strings, a catalog with descriptions and implications, and
//     Require/RequireAny guards.
//   - apikey: API keys with scopes, test/live environments, rotation and
//     revocation, and an Authenticator for them.
//   - oauth: an OAuth 2.0 authorization server on github.com/ory/fosite and
//     an Authenticator for its tokens.
//   - ratelimit: multi-window rate limits with X-RateLimit-* headers, in
//     memory or on Redis.
//   - paginate: limit/per_page and offset/page parameters, X-Pagination-*
//     and Link headers, signed cursors.
//   - webhook: signed webhooks (Standard Webhooks) with durable delivery.
//   - storage: the storage interfaces, with memory and SQL adapters, a
//     conformance suite for adapters of your own, and storage/redisinv.
//
// Dependencies go one way: this package, apierror and scope form the core
// and import none of the feature packages.
package gatehouse
