package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// BenchmarkHotReads measures the three reads on the request path: an API
// key by hash, an access token by signature, a client by id, on each
// backend, with 10,000 rows of each in the store.
func BenchmarkHotReads(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) storage.Store
	}{
		{"memory", func(*testing.B) storage.Store { return memory.New() }},
		{"sqlite", func(b *testing.B) storage.Store {
			s, err := sqlstore.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), sqlstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) storage.Store { return openPostgres(b, sqlstore.Config{}) }},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.open(b)
			ctx := b.Context()
			const n = 10000
			hashes, sigs, ids := make([]string, n), make([]string, n), make([]string, n)
			now := time.Now()
			fill := func(ctx context.Context) error {
				for i := range n {
					hashes[i], sigs[i], ids[i] = storage.NewID(), storage.NewID(), storage.NewID()
					if err := s.CreateAPIKey(ctx, &storage.APIKey{ID: storage.NewID(), Hash: hashes[i], OrganisationID: "org", Environment: "live", Scopes: []string{"bookings:read"}, CreatedAt: now}); err != nil {
						return err
					}
					if err := s.CreateToken(ctx, &storage.Token{Kind: storage.KindAccessToken, Signature: sigs[i], RequestID: "r", Active: true, RequestedAt: now, Data: []byte(`{}`)}); err != nil {
						return err
					}
					if err := s.CreateClient(ctx, &storage.Client{ID: ids[i], Name: "c", OrganisationID: "org", Scopes: []string{"a"}, CreatedAt: now}); err != nil {
						return err
					}
				}
				return nil
			}
			var err error
			if sq, ok := s.(*sqlstore.Store); ok {
				err = sq.InTx(ctx, fill)
			} else {
				err = fill(ctx)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.Run("APIKeyByHash", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.GetAPIKeyByHash(ctx, hashes[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("AccessTokenBySignature", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.GetToken(ctx, storage.KindAccessToken, sigs[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("ClientByID", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := s.GetClient(ctx, ids[i%n]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkKeyByHashMillion looks API keys up by hash in a PostgreSQL table
// of 1,000,000 keys: the storage part of a cold API-key verification at
// scale (the rest is one SHA-256 and the checks, about 1 µs).
func BenchmarkKeyByHashMillion(b *testing.B) {
	s := openPostgres(b, sqlstore.Config{})
	ctx := b.Context()
	p := s.TablePrefix()
	_, err := s.DB().ExecContext(ctx, `INSERT INTO `+p+`api_keys (id, hash, organisation_id, owner_id, name, display, scopes, environment, created_at,
		expires_at, revoked_at, last_used_at, last_used_ip, rate_limit, uses_limited, uses_remaining, refill_amount, refill_interval, last_refill_at, metadata)
		SELECT 'key_' || g, encode(sha256(g::text::bytea), 'hex'), 'org-' || (g % 1000), '', 'k', '', '["bookings:read"]', 'live', g, 0, 0, 0, '', '', false, 0, 0, 0, 0, '{}'
		FROM generate_series(1, 1000000) g`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE `+p+`api_keys`); err != nil {
		b.Fatal(err)
	}
	hashes := make([]string, 4096)
	for i := range hashes {
		sum := sha256.Sum256([]byte(strconv.Itoa(1 + (i*7919)%1000000)))
		hashes[i] = hex.EncodeToString(sum[:])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.GetAPIKeyByHash(ctx, hashes[i%len(hashes)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkInvalidationRoundTrip is how long an invalidation takes from
// one instance to another on PostgreSQL: NOTIFY through one store, heard
// by the LISTEN of another store on the same database and prefix.
func BenchmarkInvalidationRoundTrip(b *testing.B) {
	a := openPostgres(b, sqlstore.Config{})
	other, err := sqlstore.Open(b.Context(), testenv.Postgres(b), sqlstore.Config{TablePrefix: a.TablePrefix()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = other.Close() })
	got := make(chan string, 1)
	other.Invalidator().OnInvalidate("bench", func(k string) {
		if k != "" {
			got <- k
		}
	})
	for ready := false; !ready; { // a message sent before the LISTEN is lost
		if err := a.Invalidator().Invalidate(b.Context(), "bench", "ready"); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
			ready = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := strconv.Itoa(i)
		if err := a.Invalidator().Invalidate(b.Context(), "bench", k); err != nil {
			b.Fatal(err)
		}
		for <-got != k {
		}
	}
}

// BenchmarkInvalidationPollSQLite: what a SQLite store's poller costs
// every 100 ms once a handler is registered, when nothing is new (idle),
// and what Invalidate costs (a row written beside the local handlers).
func BenchmarkInvalidationPollSQLite(b *testing.B) {
	s := openSQLite(b, sqlstore.Config{})
	b.Run("idle-read", func(b *testing.B) {
		last := int64(-1)
		if err := sqlstore.PollInvalidations(s, &last); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := sqlstore.PollInvalidations(s, &last); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("invalidate", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.Invalidator().Invalidate(b.Context(), "bench", strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
