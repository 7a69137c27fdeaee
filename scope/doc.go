// Package scope parses OAuth 2.0 scope strings and guards handlers by the
// scopes of the calling principal.
//
// # Scopes
//
// [Parse] reads an RFC 6749 §3.3 scope string into a [Set] (sorted, without
// duplicates). A [Catalog] lists the scopes an API knows, each with a
// human description for consent screens and optional implications
// ("bookings:write" implies "bookings:read"); every resource also has a
// wildcard ("bookings:*"). [DefaultCatalog] ships the seed's nine scopes.
// [Catalog.Narrow] cuts requested scopes down to what a client or key may
// have, at grant time.
//
// # Guards
//
// [Require] and [RequireAny] build a [Guard], middleware that answers 401
// when nobody is authenticated and 403 INSUFFICIENT_SCOPE, naming the
// missing scopes and carrying WWW-Authenticate: Bearer
// error="insufficient_scope", when the principal lacks them. The happy path
// does not allocate.
package scope
