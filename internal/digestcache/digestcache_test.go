package digestcache_test

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/digestcache"
)

func key(i int) digestcache.Digest { return sha256.Sum256([]byte(strconv.Itoa(i))) }

func TestGetPutDelete(t *testing.T) {
	t.Parallel()
	c := digestcache.New[string](1000)
	_, ok := c.Get(key(1))
	assert.False(t, ok)
	c.Put(key(1), "one")
	c.Put(key(2), "two")
	v, ok := c.Get(key(1))
	require.True(t, ok)
	assert.Equal(t, "one", v)
	c.Put(key(1), "uno") // replacing never evicts
	v, _ = c.Get(key(1))
	assert.Equal(t, "uno", v)
	c.Delete(key(1))
	_, ok = c.Get(key(1))
	assert.False(t, ok)
	c.DeleteFunc(func(v string) bool { return v == "two" })
	assert.Zero(t, c.Len())
}

func TestBoundedByRandomEviction(t *testing.T) {
	t.Parallel()
	const size = 1600
	c := digestcache.New[int](size)
	for i := range 20 * size {
		c.Put(key(i), i)
		require.LessOrEqual(t, c.Len(), size, "after %d puts", i+1)
	}
	assert.Greater(t, c.Len(), size/2, "eviction drops a tenth of a shard, not the whole cache")
	// The newest entry always survives its own put.
	_, ok := c.Get(key(20*size - 1))
	assert.True(t, ok)
	// Replacing an entry in a full shard evicts nothing.
	n := c.Len()
	c.Put(key(20*size-1), -1)
	assert.Equal(t, n, c.Len())
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c := digestcache.New[int](256)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := key(g*10000 + i%300)
				c.Put(k, i)
				c.Get(k)
				if i%97 == 0 {
					c.DeleteFunc(func(v int) bool { return v%2 == 0 })
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, c.Len(), 256)
}

func TestSumIsSHA256WithoutAllocating(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in a parallel test.
	for _, n := range []int{0, 1, 127, 128, 129, 2047, 2048, 2049, 10000} {
		s := strings.Repeat("k", n)
		assert.Equal(t, sha256.Sum256([]byte(s)), digestcache.Sum(s), "length %d", n)
		if n <= 2048 {
			assert.Zero(t, testing.AllocsPerRun(50, func() { _ = digestcache.Sum(s) }), "length %d", n)
		}
	}
}

// TestDeleteFuncTakesExactlyTheMatches: across every shard, the entries
// del picks go and the others stay.
func TestDeleteFuncTakesExactlyTheMatches(t *testing.T) {
	t.Parallel()
	c := digestcache.New[int](10_000)
	for i := range 1000 {
		c.Put(key(i), i)
	}
	c.DeleteFunc(func(v int) bool { return v%3 == 0 })
	for i := range 1000 {
		_, ok := c.Get(key(i))
		assert.Equal(t, i%3 != 0, ok, "entry %d", i)
	}
	c.DeleteFunc(func(int) bool { return false })
	assert.Equal(t, 666, c.Len(), "deleting nothing keeps everything")
}

// BenchmarkDeleteFuncFindingNothing is what each instance pays for a
// revocation another instance announces (gatehouse.Invalidator) when it
// holds none of the grant's tokens: one scan of a full cache.
func BenchmarkDeleteFuncFindingNothing(b *testing.B) {
	const size = 100_000
	c := digestcache.New[int](size)
	for i := range size {
		c.Put(key(i), i)
	}
	b.ResetTimer()
	for b.Loop() {
		c.DeleteFunc(func(v int) bool { return v < 0 })
	}
	b.ReportMetric(float64(c.Len()), "entries")
}
