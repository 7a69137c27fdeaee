package apikey_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

func benchVerify(b *testing.B, s storage.APIKeys, cfg apikey.Config) {
	m := newManager(b, s, cfg)
	secret, _, err := m.Create(b.Context(), apikey.CreateParams{OrganisationID: "o", Scopes: []string{"bookings:read"}})
	if err != nil {
		b.Fatal(err)
	}
	key := secret.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(b.Context(), key, "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures key verification: warm (cached), and cold (a
// storage read on every call) on memory and PostgreSQL.
func BenchmarkVerify(b *testing.B) {
	b.Run("warm", func(b *testing.B) { benchVerify(b, memory.New(), apikey.Config{}) })
	b.Run("cold-memory", func(b *testing.B) { benchVerify(b, memory.New(), apikey.Config{CacheTTL: time.Nanosecond}) })
	b.Run("cold-postgres", func(b *testing.B) { benchVerify(b, postgresStore(b), apikey.Config{CacheTTL: time.Nanosecond}) })
	b.Run("malformed", func(b *testing.B) {
		m := newManager(b, memory.New(), apikey.Config{})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = m.Verify(b.Context(), "gate_live_notakeynotakeynotakeynotakeynotakey1234", "192.0.2.1")
		}
	})
}

// BenchmarkFloor is the least any verification must do: one SHA-256 of the
// key and one map lookup.
func BenchmarkFloor(b *testing.B) {
	key := newKey(b, "live")
	sum := sha256.Sum256([]byte(key))
	m := map[string]int{hex.EncodeToString(sum[:]): 1}
	b.ReportAllocs()
	for b.Loop() {
		s := sha256.Sum256([]byte(key))
		if m[hex.EncodeToString(s[:])] != 1 {
			b.Fatal("miss")
		}
	}
}

// BenchmarkVerifyColdMillion verifies real keys, with no cache, against a
// PostgreSQL table of 1,000,000 keys: 1,000,000 rows inserted directly
// (their hashes are not of real keys), then 2,048 created through the
// Manager, which the benchmark verifies in turn. Each Verify parses the
// key, checks its checksum, hashes it, reads its row by the hash index and
// checks expiry, revocation and the uses budget.
func BenchmarkVerifyColdMillion(b *testing.B) {
	s := postgresStore(b)
	ctx := b.Context()
	p := s.TablePrefix()
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO `+p+`api_keys (id, hash, organisation_id, owner_id, name, display, scopes, environment, created_at,
		expires_at, revoked_at, last_used_at, last_used_ip, rate_limit, uses_limited, uses_remaining, refill_amount, refill_interval, last_refill_at, metadata)
		SELECT 'key_bulk_' || g, encode(sha256(g::text::bytea), 'hex'), 'org-' || (g % 1000), '', 'k', '', '["bookings:read"]', 'live', g, 0, 0, 0, '', '', false, 0, 0, 0, 0, '{}'
		FROM generate_series(1, 1000000) g`); err != nil {
		b.Fatal(err)
	}
	m := newManager(b, s, apikey.Config{CacheTTL: time.Nanosecond, NegativeTTL: time.Nanosecond, FlushInterval: -1})
	keys := make([]string, 2048)
	for i := range keys {
		secret, _, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "o", Scopes: []string{"bookings:read"}, Environment: "live"})
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = secret.Reveal()
	}
	if _, err := s.DB().ExecContext(ctx, `ANALYZE `+p+`api_keys`); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Verify(ctx, keys[i%len(keys)], "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
