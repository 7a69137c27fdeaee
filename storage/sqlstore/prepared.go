package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// limitOffset ends a paged query. The limit and offset are expressions,
// not bare parameters: SQLite plans with the value bound to a bare LIMIT
// parameter and so expires the prepared statement whenever its bindings
// are cleared, re-preparing it on every call (62 µs against 16 µs for a
// page query in one benchmark). PostgreSQL reads both forms alike.
const limitOffset = " LIMIT ? + 0 OFFSET ? + 0"

// maxPrepared bounds the statements a Store keeps prepared. The store's
// queries are a fixed set of templates, well under it; past it a query
// simply runs unprepared.
const maxPrepared = 256

// statements prepares each query once per connection and keeps it, for
// SQLite: its driver parses and plans every query it is given anew, which
// was two thirds of the CPU of a simple read. (pgx caches the statements
// it prepares by itself, so PostgreSQL goes to the database directly.)
// database/sql prepares a *sql.Stmt on each pool connection as it is
// first used there, and again after a connection is replaced.
type statements struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStatements(db *sql.DB) *statements {
	return &statements{db: db, m: map[string]*sql.Stmt{}}
}

// lookup returns the prepared statement for query, or nil.
func (p *statements) lookup(query string) *sql.Stmt {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.m[query]
}

// get returns the prepared statement for query, preparing it on a pool
// connection the first time, or nil when it cannot be kept (preparing
// failed, or the cache is full): the caller then runs the query as it is,
// which reports any error of preparing it.
func (p *statements) get(ctx context.Context, query string) *sql.Stmt {
	p.mu.RLock()
	st, full := p.m[query], len(p.m) >= maxPrepared
	var err error
	p.mu.RUnlock()
	if st != nil || full {
		return st
	}
	// Prepared without holding p.mu: preparing waits for a pool
	// connection, and the transactions holding the connections look up
	// their statements under p.mu.
	st, err = p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if had := p.m[query]; had != nil {
		_ = st.Close() // another caller prepared it meanwhile
		return had
	}
	if len(p.m) >= maxPrepared {
		_ = st.Close()
		return nil
	}
	p.m[query] = st
	return st
}

// close closes every statement.
func (p *statements) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for q, st := range p.m {
		_ = st.Close()
		delete(p.m, q)
	}
}

// preparedConn runs queries through the store's prepared statements, in
// the transaction tx when it is not nil. A statement executed outside a
// transaction is a write of its own: it waits its turn among the store's
// writes (Store.awaitWriter), as transactions do.
type preparedConn struct {
	s  *Store
	p  *statements
	tx *sql.Tx
}

func (c preparedConn) plain() Querier {
	if c.tx != nil {
		return c.tx
	}
	return c.p.db
}

// stmt returns the statement for query, bound to the transaction if any.
func (c preparedConn) stmt(ctx context.Context, query string) *sql.Stmt {
	if c.tx == nil {
		return c.p.get(ctx, query)
	}
	// A transaction never prepares on another connection: it holds its own
	// (and, on SQLite, the write lock) while the pool may have none to
	// spare. A statement prepared earlier is bound to the transaction,
	// which reuses it where its connection already has it and otherwise
	// prepares it there; the binding ends with the transaction. One not
	// prepared yet runs as it is. (Preparing such queries after the
	// transaction, during a storm of concurrent transactions, was once
	// followed by a SQLITE_BUSY in CI; transactions now also queue in
	// order before they begin, see Store.InTx.)
	st := c.p.lookup(query)
	if st == nil {
		return nil
	}
	return c.tx.StmtContext(ctx, st)
}

func (c preparedConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c.tx == nil && c.s.writer != nil {
		if err := c.s.awaitWriter(ctx); err != nil {
			return nil, err
		}
		defer c.s.releaseWriter()
	}
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.plain().ExecContext(ctx, query, args...)
}

func (c preparedConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.plain().QueryContext(ctx, query, args...)
}

func (c preparedConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.plain().QueryRowContext(ctx, query, args...)
}
