package storagetest_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/storage/storagetest"
)

// An adapter for your own database passes the same suite as Gatehouse's:
// put this in its _test.go file, returning a fresh, empty store for each
// subtest.
func Example() {
	_ = func(t *testing.T) { // func TestConformance(t *testing.T)
		storagetest.Run(t, func(t *testing.T) storage.Store {
			return memory.New() // your adapter, on its own empty schema
		})
	}
}

// An Invalidator of your own (over Redis pub/sub, say, for a deployment
// whose instances share something other than PostgreSQL) passes the same
// check as sqlstore's: put this in its _test.go file, returning two
// invalidators that stand for two instances on a channel of their own
// (here sqlstore's on SQLite, which reaches its own process: one, twice).
func ExampleRunInvalidator() {
	_ = func(t *testing.T) { // func TestInvalidatorConformance(t *testing.T)
		storagetest.RunInvalidator(t, func(t *testing.T) (storagetest.Invalidator, storagetest.Invalidator) {
			s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "inv.db"), sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s.Invalidator(), s.Invalidator() // yours: two clients of one backend
		})
	}
}
