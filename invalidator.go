package gatehouse

import "context"

// Invalidator carries cache invalidations between the instances of a
// deployment. The API-key manager and the OAuth resource authenticator
// keep verified credentials in memory for a few seconds (their CacheTTL,
// 5 s by default); without an Invalidator, a key or token revoked on one
// instance is refused there at once and on the others when their cached
// copy expires. Given one, every instance drops its copy as soon as the
// revocation is heard. The cache TTL stays the bound when a message is
// lost.
//
// storage/sqlstore provides one (Store.Invalidator): PostgreSQL's
// LISTEN/NOTIFY, or, on SQLite, a table that every process on the file
// reads.
type Invalidator interface {
	// Invalidate tells every instance, this one included, that what key
	// names under topic ("apikey", "oauth-grant", …) changed. It returns
	// once the message is on its way. Inside a transaction the store
	// carries in ctx, the message may wait for the commit.
	Invalidate(ctx context.Context, topic, key string) error
	// OnInvalidate runs fn for every invalidation of topic, from any
	// instance, until cancel is called. An empty key means invalidations
	// may have been missed (the connection that carries them was lost and
	// is back): fn drops every cached entry of the topic. fn must return
	// quickly; it runs on the Invalidator's own goroutine.
	OnInvalidate(topic string, fn func(key string)) (cancel func())
}
