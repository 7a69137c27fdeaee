package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-go/gatehouse/internal/fanout"
)

// Invalidator carries cache invalidations between the stores of one
// database and table prefix: it implements gatehouse.Invalidator, for
// apikey.Config.Invalidator and oauth.Config.Invalidator. Get it from
// [Store.Invalidator].
//
// On PostgreSQL an invalidation is a NOTIFY on the channel
// "<prefix>invalidate", heard by every store that listens on it, in
// every process; inside a transaction the store carries in ctx it is
// sent when the transaction commits, and not at all if it rolls back.
// The first OnInvalidate starts the listener, which holds one connection
// of the pool until [Store.Close]: count it in MaxOpenConns (a *sql.DB
// given to [New] must come from [PostgresConnector], or the listener
// logs that it cannot listen and the caches keep their TTL). When that
// connection is lost the listener connects again, and then calls every
// handler with the empty key, since messages sent meanwhile were missed.
// On SQLite an invalidation reaches the handlers registered on this store
// before Invalidate returns, and is written to the table
// "<prefix>invalidations" (inside a transaction ctx carries, so that it is
// there once the transaction commits); every store on the same file, in
// this process or another (the admin command beside a server), reads the
// rows written after the last one it saw, every 100 ms, and passes them
// to its handlers, its own included, so that a cache that re-read a row
// before the transaction committed forgets it again. The first
// OnInvalidate starts that poller; it also removes rows older than ten
// minutes, and calls every handler with the empty key when it has not
// read for five minutes (a process that was suspended), since rows it
// did not read may have been removed.
//
// A message only ever makes a cache forget: one sent by anything else
// that may NOTIFY on the database costs the next request a store read,
// never lets a revoked credential through.
type Invalidator struct {
	s       *Store
	channel string

	hub    fanout.Hub
	worker fanout.Worker // the listener or the poller

	poll, sweep, keep time.Duration // SQLite's poller: pollInvalidations and the rest
}

// Invalidator returns the store's invalidator; every call returns the
// same one.
func (s *Store) Invalidator() *Invalidator { return s.inv }

// Invalidate implements gatehouse.Invalidator.
func (v *Invalidator) Invalidate(ctx context.Context, topic, key string) error {
	msg, err := fanout.Message("sqlstore", topic, key)
	if err != nil {
		return err
	}
	if v.s.dialect != Postgres {
		v.hub.Dispatch(topic, key)
		_, err := v.s.conn(ctx).ExecContext(ctx, v.s.sql(`INSERT INTO {p}invalidations (topic, item, created_at) VALUES (?, ?, ?)`), topic, key, micros(time.Now()))
		return Wrap("invalidate", err)
	}
	_, err = v.s.conn(ctx).ExecContext(ctx, `SELECT pg_notify($1, $2)`, v.channel, msg)
	return Wrap("invalidate", err)
}

// OnInvalidate implements gatehouse.Invalidator.
func (v *Invalidator) OnInvalidate(topic string, fn func(key string)) (cancel func()) {
	cancel = v.hub.Add(topic, fn)
	if v.s.dialect == Postgres {
		v.worker.Start(v.listen)
	} else {
		v.worker.Start(v.pollTable)
	}
	return cancel
}

// close stops the listener or poller, if it runs, and waits for it.
func (v *Invalidator) close() { v.worker.Stop() }

// listen keeps a LISTEN connection until ctx ends, connecting again after
// a failure, at most every few seconds.
func (v *Invalidator) listen(ctx context.Context) {
	fanout.Retry(ctx, v.s.log, "invalidation listener lost its connection; connecting again", []any{"channel", v.channel}, v.listenOnce)
}

// errNotPgx is the listener's error for a *sql.DB not opened through pgx.
var errNotPgx = errors.New("sqlstore: the invalidation listener needs a database opened with PostgresConnector (pgx)")

// listenOnce listens on one connection until it fails or ctx ends, and
// reports whether LISTEN succeeded. The connection is closed afterwards,
// never returned to the pool still listening.
func (v *Invalidator) listenOnce(ctx context.Context) (bool, error) {
	conn, err := v.s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	listening := false
	err = conn.Raw(func(dc any) error {
		var pc *pgx.Conn
		switch c := dc.(type) {
		case interface{ Unwrap() *stdlib.Conn }:
			pc = c.Unwrap().Conn()
		case *stdlib.Conn:
			pc = c.Conn()
		default:
			return errNotPgx
		}
		defer pc.Close(context.Background())
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{v.channel}.Sanitize()); err != nil {
			return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
		}
		listening = true
		v.hub.Dispatch("", "") // anything sent before this moment may have been missed
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
			}
			v.hub.Dispatch(fanout.Parse(n.Payload))
		}
	})
	return listening, err
}

// How often a SQLite store's poller reads the invalidations table, how
// often it removes old rows, and how long rows are kept (Invalidator's
// poll, sweep and keep). A poller that has not read for half of keep may
// have missed removed rows.
const (
	pollInvalidations  = 100 * time.Millisecond
	sweepInvalidations = time.Minute
	keepInvalidations  = 10 * time.Minute
)

// pollTable reads the invalidations table of a SQLite database until ctx
// ends.
func (v *Invalidator) pollTable(ctx context.Context) {
	t := time.NewTicker(v.poll)
	defer t.Stop()
	var (
		last      int64     = -1 // the last row read; -1 until the first read
		lastRead  time.Time      // wall clock, which runs on while a process is suspended
		lastSweep time.Time
		failing   bool
	)
	for {
		now := time.Now().Round(0)
		err := v.pollOnce(ctx, &last)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			v.s.log.Warn("invalidation poller cannot read; trying again", "table", v.s.prefix+"invalidations", "err", err)
		case err == nil:
			if failing {
				failing = false
				v.s.log.Info("invalidation poller reads again", "table", v.s.prefix+"invalidations")
			}
			if !lastRead.IsZero() && now.Sub(lastRead) > v.keep/2 {
				// Rows written since the last read may have been removed
				// unread. Told once, at the read that finds the gap: while
				// reads fail, the caches keep what they hold.
				v.hub.Dispatch("", "")
			}
			lastRead = now
			if now.Sub(lastSweep) >= v.sweep {
				lastSweep = now
				if _, err := v.s.conn(ctx).ExecContext(ctx, v.s.sql(`DELETE FROM {p}invalidations WHERE created_at < ?`), micros(now.Add(-v.keep))); err != nil && ctx.Err() == nil {
					v.s.log.Warn("invalidation poller cannot remove old rows", "table", v.s.prefix+"invalidations", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollOnce passes the rows after *last to the handlers and moves *last
// on. Its first call only finds where the table ends and has every
// handler forget everything: what was written before may have been
// cached after.
func (v *Invalidator) pollOnce(ctx context.Context, last *int64) error {
	c := v.s.conn(ctx)
	if *last < 0 {
		if err := c.QueryRowContext(ctx, v.s.sql(`SELECT COALESCE(MAX(seq), 0) FROM {p}invalidations`)).Scan(last); err != nil {
			*last = -1
			return err
		}
		v.hub.Dispatch("", "")
	}
	for {
		rows, err := c.QueryContext(ctx, v.s.sql(`SELECT seq, topic, item FROM {p}invalidations WHERE seq > ? ORDER BY seq LIMIT 500`), *last)
		if err != nil {
			return err
		}
		var got [][2]string // passed on once the rows are closed: a handler may use the store
		for err == nil && rows.Next() {
			var seq int64
			var topic, key string
			if err = rows.Scan(&seq, &topic, &key); err == nil {
				*last = seq
				got = append(got, [2]string{topic, key})
			}
		}
		if err == nil {
			err = rows.Err()
		}
		_ = rows.Close()
		for _, m := range got {
			v.hub.Dispatch(m[0], m[1])
		}
		if err != nil || len(got) < 500 {
			return err
		}
	}
}
