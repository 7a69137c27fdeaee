package storagetest_test

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
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
