// Package testenv finds the real backends that Gatehouse's tests use —
// PostgreSQL and Redis on their local addresses, overridable by environment
// variables — and decides what a test does when one is absent: skip with a
// message naming what to start, or fail when CI=true.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver
)

// Environment variables that override the default addresses.
const (
	PostgresEnv = "GATEHOUSE_TEST_POSTGRES"
	RedisEnv    = "GATEHOUSE_TEST_REDIS"
)

// Defaults used when the variables are unset.
const (
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedis    = "redis://127.0.0.1:6379/0"
)

// CI reports whether the tests run in CI (CI=true), where a missing backend
// is a failure rather than a skip.
func CI() bool { return os.Getenv("CI") == "true" }

func unavailable(t testing.TB, what, start string, err error) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is required when CI=true but is not reachable: %v", what, err)
	}
	t.Skipf("%s not reachable (%v): start it with %s, or set the address in the environment", what, err, start)
}

func reachable(rawURL, defPort string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defPort)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return c.Close()
}

// Postgres returns the URL of the test PostgreSQL database, or skips (fails
// under CI=true) when it is not reachable.
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		dsn = DefaultPostgres
	}
	if err := reachable(dsn, "5432"); err != nil {
		unavailable(t, "PostgreSQL", "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` ("+PostgresEnv+")", err)
	}
	return dsn
}

// PostgresSchema returns the URL of Postgres(t) with its search_path set
// to a schema of its own, made for t (named by prefix and a random part)
// and dropped with everything in it when t ends.
func PostgresSchema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := Postgres(t)
	schema := Name(prefix)
	exec := func(q string) error {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(q)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _ = exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redis returns the URL of the test Redis server, or skips (fails under
// CI=true) when it is not reachable.
func Redis(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(RedisEnv)
	if addr == "" {
		addr = DefaultRedis
	}
	if err := reachable(addr, "6379"); err != nil {
		unavailable(t, "Redis", "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''` ("+RedisEnv+")", err)
	}
	return addr
}

// Name returns a short random name, safe in SQL identifiers and Redis keys,
// for isolating one test's tables or keys from every other run.
func Name(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// ClearOfMinuteBoundary returns once at least need is left in the current
// clock minute, sleeping into the next minute when less is. Rate limits
// and sign-in budgets count in windows aligned to the clock, so a test
// that expects a sequence of requests to fall in one window must not
// straddle two.
func ClearOfMinuteBoundary(need time.Duration) {
	now := time.Now()
	next := now.Truncate(time.Minute).Add(time.Minute)
	if left := next.Sub(now); left < need {
		time.Sleep(left + 50*time.Millisecond)
	}
}

// Once holds a function to run once, the next time a test double reaches
// the point it stands for (a change landing between another's read and
// write). The zero value holds nothing; safe from any goroutine.
type Once struct {
	mu sync.Mutex
	f  func()
}

// Set makes f the function the next Run runs.
func (o *Once) Set(f func()) {
	o.mu.Lock()
	o.f = f
	o.mu.Unlock()
}

// Run runs the function set, if any, and forgets it.
func (o *Once) Run() {
	o.mu.Lock()
	f := o.f
	o.f = nil
	o.mu.Unlock()
	if f != nil {
		f()
	}
}

// Heard collects the keys an invalidation handler receives, in order.
// The zero value is empty; safe from any goroutine.
type Heard struct {
	mu   sync.Mutex
	keys []string
}

// Add records k: pass it as the handler.
func (h *Heard) Add(k string) { h.mu.Lock(); h.keys = append(h.keys, k); h.mu.Unlock() }

// Reset forgets every key recorded.
func (h *Heard) Reset() { h.mu.Lock(); h.keys = nil; h.mu.Unlock() }

// Count returns how many times k was recorded.
func (h *Heard) Count(k string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, got := range h.keys {
		if got == k {
			n++
		}
	}
	return n
}

// Has reports whether k was recorded.
func (h *Heard) Has(k string) bool { return h.Count(k) > 0 }
