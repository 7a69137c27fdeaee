package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
// On SQLite, which serves one instance, invalidations reach the handlers
// registered on this store at once.
//
// A message only ever makes a cache forget: one sent by anything else
// that may NOTIFY on the database costs the next request a store read,
// never lets a revoked credential through.
type Invalidator struct {
	s       *Store
	channel string

	mu      sync.Mutex
	next    int
	subs    map[string]map[int]func(string) // topic → id → handler
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

// maxInvalidation bounds topic and key together: PostgreSQL refuses a
// NOTIFY payload of 8,000 bytes or more.
const maxInvalidation = 7900

// Invalidator returns the store's invalidator; every call returns the
// same one.
func (s *Store) Invalidator() *Invalidator { return s.inv }

// Invalidate implements gatehouse.Invalidator.
func (v *Invalidator) Invalidate(ctx context.Context, topic, key string) error {
	if topic == "" || strings.ContainsRune(topic, ' ') || len(topic)+1+len(key) > maxInvalidation {
		return fmt.Errorf("sqlstore: invalidate: the topic must be one word and topic and key at most %d bytes", maxInvalidation)
	}
	if v.s.dialect != Postgres {
		v.dispatch(topic, key)
		return nil
	}
	_, err := v.s.conn(ctx).ExecContext(ctx, `SELECT pg_notify($1, $2)`, v.channel, topic+" "+key)
	return Wrap("invalidate", err)
}

// OnInvalidate implements gatehouse.Invalidator.
func (v *Invalidator) OnInvalidate(topic string, fn func(key string)) (cancel func()) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.subs[topic] == nil {
		v.subs[topic] = map[int]func(string){}
	}
	id := v.next
	v.next++
	v.subs[topic][id] = fn
	if v.s.dialect == Postgres && !v.started && !v.closed {
		v.started = true
		ctx, stop := context.WithCancel(context.Background())
		v.stop, v.done = stop, make(chan struct{})
		go v.listen(ctx)
	}
	return func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		delete(v.subs[topic], id)
	}
}

// dispatch runs topic's handlers for key; an empty topic runs every
// handler with the empty key.
func (v *Invalidator) dispatch(topic, key string) {
	v.mu.Lock()
	var fns []func(string)
	for t, m := range v.subs {
		if topic == "" || t == topic {
			for _, fn := range m {
				fns = append(fns, fn)
			}
		}
	}
	v.mu.Unlock()
	for _, fn := range fns {
		fn(key)
	}
}

// close stops the listener, if it runs, and waits for it.
func (v *Invalidator) close() {
	v.mu.Lock()
	v.closed = true
	stop, done := v.stop, v.done
	v.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// listen keeps a LISTEN connection until ctx ends, connecting again after
// a failure, at most every few seconds.
func (v *Invalidator) listen(ctx context.Context) {
	defer close(v.done)
	wait := 100 * time.Millisecond
	for {
		heard, err := v.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if heard {
			wait = 100 * time.Millisecond
		}
		v.s.log.Warn("invalidation listener lost its connection; connecting again", "channel", v.channel, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
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
		v.dispatch("", "") // anything sent before this moment may have been missed
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
			}
			topic, key, _ := strings.Cut(n.Payload, " ")
			v.dispatch(topic, key)
		}
	})
	return listening, err
}
