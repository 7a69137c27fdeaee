// Package storage defines what Gatehouse stores, as small interfaces named
// for what they hold: [Organisations], [Users], [Clients], [Tokens],
// [Consents], [APIKeys], [Subscriptions] and the webhook [Outbox]. [Store]
// is all of them together.
//
// The types here are plain Go values: no fosite interface, no
// interface{}. The oauth package adapts [Clients] and [Tokens] to fosite
// internally, so an adapter author implements these methods and nothing
// else, and a missing method is a compile error.
//
// # Adapters
//
//   - storage/memory: complete and concurrency-safe, for tests and
//     embedding.
//   - storage/sqlstore: database/sql with SQLite (modernc.org/sqlite, pure
//     Go) and PostgreSQL (pgx) dialects, embedded migrations, and
//     transactional enqueue of webhook events.
//
// Both pass storage/storagetest, the conformance suite that a custom
// adapter runs too. An application whose users already live in a table
// of its own embeds a *sqlstore.Store and implements [Users] on that
// table (sqlstore's ExampleStore_applicationsOwnUsersTable);
// docs/ADAPTERS.md in the repository lists every rule the suite checks.
//
// # Errors
//
// Adapters return errors for which errors.Is holds with [ErrNotFound],
// [ErrConflict] or [ErrLeaseLost]; other errors are failures of the
// backend and name the operation.
//
// # Secrets
//
// No plaintext API key, client secret or password is ever stored: only
// hashes. Webhook signing secrets must be recoverable to sign; the SQL
// adapter encrypts them at rest with AES-GCM when given a key.
package storage
