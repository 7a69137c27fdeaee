// Package sqlstore is the SQL adapter of the storage interfaces, over
// database/sql, with two dialects: SQLite through modernc.org/sqlite (pure
// Go, no cgo: the embedded default) and PostgreSQL through
// github.com/jackc/pgx/v5/stdlib.
//
// # Opening
//
//	s, err := sqlstore.Open(ctx, "sqlite:gatehouse.db", sqlstore.Config{})
//	s, err := sqlstore.Open(ctx, "postgres://user@db/app", sqlstore.Config{TablePrefix: "auth_"})
//	defer s.Close()
//	err = s.Migrate(ctx) // versioned, embedded; applying twice is a no-op
//
// Or hand it a *sql.DB of your own with [New]. Every table name starts with
// Config.TablePrefix (default "gatehouse_"), so the tables can live in an
// application's existing database.
//
// # Concurrency
//
// Webhook claims are safe across processes: PostgreSQL claims with
// SELECT … FOR UPDATE SKIP LOCKED; SQLite runs every transaction as
// BEGIN IMMEDIATE (one writer at a time) with a busy timeout. Within one
// process a SQLite store's writes — its transactions, and statements it
// executes outside one — queue for each other in order (for at most
// [Config.BusyTimeout]), instead of polling in SQLite's busy handler. An
// application's own SQL joins the queue by running in [Store.InTx] on the
// *sql.Tx that [Store.Tx] returns; a transaction it begins on [Store.DB]
// itself waits in the busy handler. Several server instances must share
// PostgreSQL, not a SQLite file.
//
// # Transactions
//
// [Store.EnqueueTx] writes a webhook event inside the application's own
// *sql.Tx, so an event is stored exactly when the change it reports
// commits. [Store.InTx] runs several storage calls in one transaction;
// [Store.Tx] hands its *sql.Tx to the application's own code, the way to
// write the application's rows and events together on SQLite.
//
// # Performance
//
// On SQLite every query run outside a transaction is prepared once per
// connection and kept (the driver would otherwise parse and plan it on
// every call); a transaction reuses those and runs others as they are.
// [Open]
// keeps as many idle connections as open ones on both databases, so a busy
// server does not reopen connections. [Store.Querier] gives an
// application's own queries the same path, inside InTx's transaction when
// there is one. Paged queries should write LIMIT and OFFSET as expressions
// on SQLite (paginate.SQLite does): SQLite re-prepares a statement whose
// LIMIT is a bare parameter on every execution.
//
// # Secrets at rest
//
// API keys, client secrets and passwords reach the store only as hashes.
// Webhook signing secrets must be recoverable to sign: when
// Config.EncryptionKey is set they are encrypted with AES-256-GCM before
// they are written (and rows written without a key still read). Without a
// key they are stored as given; set one in production.
//
// Times are stored as Unix microseconds (BIGINT), durations as
// nanoseconds, lists as JSON text.
package sqlstore

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/gatehouse-go/gatehouse/storage"
)

// Dialect is the SQL flavour of the database.
type Dialect int

// The supported dialects.
const (
	SQLite Dialect = iota + 1
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// Config holds the optional settings of a Store. The zero value is valid.
type Config struct {
	// TablePrefix starts every table name. It must match
	// [a-z_][a-z0-9_]{0,30}. Default: "gatehouse_".
	TablePrefix string
	// EncryptionKey, 32 bytes, encrypts webhook signing secrets at rest
	// with AES-256-GCM. Default: none (secrets stored as given).
	EncryptionKey []byte
	// MaxOpenConns bounds the connection pool of a database opened by
	// Open. Default: 20 for PostgreSQL, 8 for SQLite.
	MaxOpenConns int
	// BusyTimeout bounds how long a SQLite write waits for the database
	// while another holds it: the store's own writes queue in order for at
	// most this long, and Open sets it as SQLite's busy_timeout for
	// everything else. Past it the call fails with
	// storage.ErrUnavailable. Default: 10 s. PostgreSQL ignores it.
	BusyTimeout time.Duration
	// Logger receives what the store does on its own: the invalidation
	// listener's lost connections ([Store.Invalidator]). Default: silent.
	Logger *slog.Logger
}

var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,30}$`)

// Store implements [storage.Store] over database/sql. It is safe for
// concurrent use.
type Store struct {
	db      *sql.DB
	dialect Dialect
	prefix  string
	aead    cipher.AEAD
	owned   bool

	queries sync.Map // template → rendered SQL
	stmts   *statements
	// writer, on SQLite, is held by the store's one write in progress: a
	// transaction, or a statement run outside one by ExecContext. SQLite
	// admits one writer at a time, and connections waiting in its busy
	// handler poll with sleeps of up to 100 ms and no order, so that under
	// load one of them could miss its turn for the whole busy timeout.
	// Waiting here is in order and wakes at once.
	writer     chan struct{}
	writerWait time.Duration
	waiting    atomic.Int64 // writes waiting for writer

	log *slog.Logger
	inv *Invalidator
}

var errNegativeBusyTimeout = errors.New("sqlstore: BusyTimeout must not be negative")

// defaultBusyTimeout is Config.BusyTimeout's default.
const defaultBusyTimeout = 10 * time.Second

var (
	_ storage.Store = (*Store)(nil)
	_ storage.Tx    = (*Store)(nil)
)

// Open opens the database named by dsn: "sqlite:PATH" (or "sqlite::memory:")
// or a "postgres://" / "postgresql://" URL. It configures the connection
// pool and, for SQLite, WAL mode, a busy timeout and immediate
// transactions. Call [Store.Migrate] before use and [Store.Close] after.
func Open(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	if cfg.BusyTimeout < 0 {
		return nil, errNegativeBusyTimeout
	}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		dialect = SQLite
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("sqlstore: open: sqlite: needs a path (sqlite:gatehouse.db)")
		}
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cmp.Or(cfg.BusyTimeout, defaultBusyTimeout).Milliseconds()))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
		if err == nil {
			n := max(1, cmpOr(cfg.MaxOpenConns, 8))
			if path == ":memory:" {
				n = 1 // every connection would be another database
			}
			// Every connection is kept: opening one runs the pragmas and
			// loses its prepared statements, and database/sql's default
			// of two idle connections made a busy server open and close
			// connections on most requests.
			db.SetMaxOpenConns(n)
			db.SetMaxIdleConns(n)
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialect = Postgres
		var connector driver.Connector
		connector, err = PostgresConnector(dsn)
		if err == nil {
			db = sql.OpenDB(connector)
			// As many idle connections as open ones, so that a burst does
			// not close and reopen connections (each a round of TCP and
			// authentication); the idle time limit shrinks the pool once
			// the burst is over.
			db.SetMaxOpenConns(cmpOr(cfg.MaxOpenConns, 20))
			db.SetMaxIdleConns(cmpOr(cfg.MaxOpenConns, 20))
			db.SetConnMaxLifetime(30 * time.Minute)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, errors.New(`sqlstore: open: the database must be "sqlite:PATH" or a postgres:// URL`)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", dialect, err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", dialect, err)
	}
	s, err := New(db, dialect, cfg)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// New returns a Store over db, a database of the given dialect that the
// caller opened (and closes). For SQLite, open it with
// "?_txlock=immediate&_pragma=busy_timeout(10000)" so concurrent writers
// wait for each other instead of failing. For PostgreSQL, open it with
// sql.OpenDB on a [PostgresConnector] rather than sql.Open("pgx", dsn), so
// that connections broken by cancelled queries leave the pool.
func New(db *sql.DB, dialect Dialect, cfg Config) (*Store, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, errors.New("sqlstore: unknown dialect")
	}
	prefix := cfg.TablePrefix
	if prefix == "" {
		prefix = "gatehouse_"
	}
	if cfg.BusyTimeout < 0 {
		return nil, errNegativeBusyTimeout
	}
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("sqlstore: TablePrefix %q must match %s", prefix, prefixRE)
	}
	s := &Store{db: db, dialect: dialect, prefix: prefix, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.inv = &Invalidator{s: s, channel: prefix + "invalidate",
		poll: pollInvalidations, sweep: sweepInvalidations, keep: keepInvalidations}
	if dialect == SQLite {
		s.stmts = newStatements(db)
		s.writer = make(chan struct{}, 1)
		s.writerWait = cmp.Or(cfg.BusyTimeout, defaultBusyTimeout)
	}
	if cfg.EncryptionKey != nil {
		if len(cfg.EncryptionKey) != 32 {
			return nil, errors.New("sqlstore: EncryptionKey must be 32 bytes (AES-256)")
		}
		block, err := aes.NewCipher(cfg.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: EncryptionKey: %w", err)
		}
		s.aead, err = cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: EncryptionKey: %w", err)
		}
	}
	return s, nil
}

// DB returns the underlying database handle.
func (s *Store) DB() *sql.DB { return s.db }

// TablePrefix returns the prefix of the store's table names.
func (s *Store) TablePrefix() string { return s.prefix }

// Dialect returns the store's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the database if [Open] opened it; a database given to [New]
// is left to its owner.
func (s *Store) Close() error {
	s.inv.close()
	if s.stmts != nil {
		s.stmts.close()
	}
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// ---- SQL rendering

// sql renders a query template: {p} becomes the table prefix, and for
// PostgreSQL each ? becomes $1, $2 …. Rendered queries are cached.
func (s *Store) sql(q string) string {
	if v, ok := s.queries.Load(q); ok {
		return v.(string)
	}
	r := s.dialect.Rebind(strings.ReplaceAll(q, "{p}", s.prefix))
	s.queries.Store(q, r)
	return r
}

// Rebind returns query with its ? placeholders in the dialect's form:
// unchanged for SQLite, $1, $2 … for PostgreSQL. Every ? counts, so a
// query that needs a literal question mark passes it as a parameter.
// Code that runs its own SQL beside the store (through [Store.Querier])
// writes it once for both dialects.
func (d Dialect) Rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// ---- transactions

type txKey struct{ s *Store }

// Querier runs SQL: a *sql.DB, a *sql.Tx, or what [Store.Querier]
// returns.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Querier returns what the store runs its own SQL on, for an application's
// tables kept in the same database: the transaction ctx carries (inside
// [Store.InTx]) or else the database, and on SQLite the store's cache of
// prepared statements, so a query is parsed once per connection rather
// than on every call. Queries are plain SQL, with the dialect's
// placeholders. On SQLite its ExecContext outside a transaction waits its
// turn among the store's writes; a write that returns rows (RETURNING)
// should run inside InTx, which does too.
func (s *Store) Querier(ctx context.Context) Querier { return s.conn(ctx) }

// conn returns the transaction carried by ctx, or the database; on SQLite,
// through prepared statements.
func (s *Store) conn(ctx context.Context) Querier {
	tx, _ := ctx.Value(txKey{s}).(*sql.Tx)
	switch {
	case s.stmts != nil:
		return preparedConn{s: s, p: s.stmts, tx: tx}
	case tx != nil:
		return tx
	}
	return s.db
}

// InTx implements [storage.Tx]: fn runs in one transaction, which commits
// when fn returns nil. Nested calls join the outer transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{s}).(*sql.Tx); ok {
		return fn(ctx)
	}
	if s.writer != nil {
		if err := s.awaitWriter(ctx); err != nil {
			return Wrap("begin", err)
		}
		defer s.releaseWriter()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Wrap("begin", err)
	}
	if err := fn(context.WithValue(ctx, txKey{s}, tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return Wrap("commit", err)
	}
	return nil
}

// awaitWriter takes s.writer: at once when no other write of the store is
// in progress, else in turn (a channel's waiting senders are served first
// come, first served), for at most s.writerWait. releaseWriter gives it
// back.
func (s *Store) awaitWriter(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
		return nil
	default:
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.writerWait)
	defer t.Stop()
	select {
	case s.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to write: %w", context.Cause(ctx))
	case <-t.C:
		return fmt.Errorf("waiting to write: %w: another write held the SQLite database for %v", storage.ErrUnavailable, s.writerWait)
	}
}

func (s *Store) releaseWriter() { <-s.writer }

// WaitingWrites returns how many of the store's writes (transactions, and
// statements run outside one) are waiting for another to end: on SQLite,
// which writes one at a time, a gauge of write contention; always 0 on
// PostgreSQL.
func (s *Store) WaitingWrites() int { return int(s.waiting.Load()) }

// WithTx returns a context whose storage calls run in tx, a transaction
// the caller began on [Store.DB] and will commit.
func (s *Store) WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{s}, tx)
}

// Tx returns the transaction ctx carries (inside [Store.InTx], or from
// [Store.WithTx]), or nil. An application whose code takes a *sql.Tx runs
// it inside InTx and passes Tx(ctx), for its own statements and for
// EnqueueTx: on SQLite the transaction then waits its turn among the
// store's writes, where one begun on [Store.DB] waits in SQLite's busy
// handler and, behind a steady stream of the store's writes, may wait out
// the whole busy timeout.
func (s *Store) Tx(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{s}).(*sql.Tx)
	return tx
}

// ---- migrations

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	body    string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s: name must start with a number", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), body: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// Migrate applies the embedded schema migrations that the database has not
// seen, in order, each in its own transaction, and records them in
// {prefix}schema_migrations. Applying them again is a no-op. On PostgreSQL
// an advisory lock keeps concurrent migrators (several instances starting
// at once) from racing.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	// SQLite is non-empty on SQLite only, for a migration's {{if .SQLite}}.
	types := map[string]string{"P": s.prefix, "Bytes": "BLOB", "Bool": "INTEGER", "SQLite": "yes"}
	if s.dialect == Postgres {
		types = map[string]string{"P": s.prefix, "Bytes": "BYTEA", "Bool": "BOOLEAN", "SQLite": ""}
	}
	for _, m := range ms {
		var body strings.Builder
		tmpl, err := template.New(m.name).Option("missingkey=error").Parse(m.body)
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		if err := tmpl.Execute(&body, types); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		err = s.InTx(ctx, func(ctx context.Context) error {
			c := s.conn(ctx)
			if s.dialect == Postgres {
				if _, err := c.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "gatehouse-migrate:"+s.prefix); err != nil {
					return err
				}
			}
			if _, err := c.ExecContext(ctx, s.sql(`CREATE TABLE IF NOT EXISTS {p}schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)); err != nil {
				return err
			}
			var n int
			if err := c.QueryRowContext(ctx, s.sql(`SELECT COUNT(*) FROM {p}schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if strings.TrimSpace(body.String()) != "" { // empty where it is of the other dialect
				if _, err := c.ExecContext(ctx, body.String()); err != nil {
					return err
				}
			}
			_, err := c.ExecContext(ctx, s.sql(`INSERT INTO {p}schema_migrations (version, applied_at) VALUES (?, ?)`), m.version, micros(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlstore: migrate %s: %w", m.name, err)
		}
	}
	return nil
}

// ---- errors

// Wrap names the operation and maps what the store's callers branch on:
// uniqueness violations to storage.ErrConflict, sql.ErrNoRows to
// storage.ErrNotFound, and connection-level failures (IsUnavailable) to
// storage.ErrUnavailable, keeping the cause. Every method of the store
// returns its errors through it; code that runs its own SQL on DB() beside
// the store can too, so that its outages answer 503 like the store's.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case isUniqueViolation(err):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
	case IsUnavailable(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// lookable returns storage.ErrNotFound, named by op, when a lookup key is
// text no row can hold (a NUL, bytes that are not UTF-8): PostgreSQL
// refuses such a parameter with an error, and a lookup that cannot match
// must say "not found" on every adapter, not fail.
func lookable(op string, keys ...string) error {
	for _, k := range keys {
		if !storage.ValidText(k) {
			return Wrap(op, sql.ErrNoRows)
		}
	}
	return nil
}

// IsUnavailable reports whether err, from either driver, means the
// database could not be reached or is going away rather than that the
// statement failed: connection refused, reset or closed, an I/O timeout,
// PostgreSQL's connection-exception (08…) and operator-intervention
// (57P…) classes or too many connections, SQLite busy or locked past the
// busy timeout. Wrap applies it.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "57P") || pg.Code == "53300"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		primary := lite.Code() & 0xff
		return primary == 5 || primary == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return pgconn.SafeToRetry(err)
}

func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		// SQLITE_CONSTRAINT_PRIMARYKEY (1555) and _UNIQUE (2067).
		return lite.Code() == 1555 || lite.Code() == 2067
	}
	return false
}

// mustAffect turns "no row changed" into storage.ErrNotFound.
// conditional finishes an UPDATE of the row of table with id under a
// condition on what the caller read (a version, a password hash): nil
// when it changed the row, ErrConflict when the row exists but no longer
// matches, ErrNotFound when it does not exist.
func (s *Store) conditional(ctx context.Context, op, table, id string, res sql.Result, err error) error {
	n, err := affected(op, res, err)
	if err != nil || n == 1 {
		return err
	}
	var one int
	if err := s.conn(ctx).QueryRowContext(ctx, s.sql(`SELECT 1 FROM {p}`+table+` WHERE id = ?`), id).Scan(&one); err != nil {
		return Wrap(op, err)
	}
	return fmt.Errorf("sqlstore: %s: it changed since it was read: %w", op, storage.ErrConflict)
}

func mustAffect(op string, res sql.Result, err error) error {
	if err != nil {
		return Wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// ---- value encoding

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func jsonList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("corrupt list column: %w", err)
	}
	return v, nil
}

func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // map[string]string always marshals
	return string(b)
}

func parseMap(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("corrupt map column: %w", err)
	}
	return m, nil
}

const encPrefix = "enc:v1:"

// seal encrypts a webhook secret when a key is configured.
func (s *Store) seal(plain string) string {
	if s.aead == nil || plain == "" {
		return plain
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (Go 1.24+)
	return encPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), []byte(s.prefix)))
}

// open decrypts a value written by seal.
func (s *Store) open(stored string) (string, error) {
	if !strings.HasPrefix(stored, encPrefix) {
		return stored, nil
	}
	if s.aead == nil {
		return "", errors.New("webhook secret is encrypted but no EncryptionKey is configured")
	}
	raw, err := base64.StdEncoding.DecodeString(stored[len(encPrefix):])
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("webhook secret: corrupt ciphertext")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(s.prefix))
	if err != nil {
		return "", errors.New("webhook secret: cannot decrypt (wrong EncryptionKey?)")
	}
	return string(plain), nil
}

func offsetLimit(p storage.Page) (int, int) {
	return max(0, p.Offset), p.Size()
}
