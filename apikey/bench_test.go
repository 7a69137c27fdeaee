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
