package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

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
