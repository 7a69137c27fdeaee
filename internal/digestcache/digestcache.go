// Package digestcache is the bounded cache in which the API-key and
// access-token authenticators keep their recent verifications, keyed by a
// credential's SHA-256 (or HMAC-SHA-256) digest.
//
// It is split into 16 shards by the digest's first byte (digests are
// uniform), each with its own lock, so concurrent requests with different
// credentials rarely contend. When a shard is full, putting a new entry
// first drops an arbitrary tenth of the shard: map iteration order is
// random, so this is random eviction, which bounds memory without any
// bookkeeping on a hit.
package digestcache

import (
	"crypto/sha256"
	"sync"
)

// Digest is a cache key: a 32-byte hash of the credential, never the
// credential itself.
type Digest = [32]byte

// Sum returns the SHA-256 of s. A string of up to 2 KiB (every key and
// token Gatehouse issues, and most JWTs) is hashed from a copy on the
// stack: []byte(s) would be allocated on every request. API keys and
// opaque tokens fit a small buffer, which is all their path zeroes.
func Sum(s string) Digest {
	if len(s) <= 128 {
		var buf [128]byte
		return sha256.Sum256(append(buf[:0], s...))
	}
	return sumLong(s)
}

func sumLong(s string) Digest {
	var buf [2048]byte
	if len(s) <= len(buf) {
		return sha256.Sum256(append(buf[:0], s...))
	}
	return sha256.Sum256([]byte(s))
}

const shards = 16

// Cache holds at most about its size entries. The zero value is not
// usable; call [New]. It is safe for concurrent use.
type Cache[V any] struct {
	shards [shards]shard[V]
	limit  int // per shard
}

type shard[V any] struct {
	mu sync.RWMutex
	m  map[Digest]V
}

// New returns an empty cache of about size entries (at least 16).
func New[V any](size int) *Cache[V] {
	c := &Cache[V]{limit: max(1, size/shards)}
	for i := range c.shards {
		c.shards[i].m = map[Digest]V{}
	}
	return c
}

func (c *Cache[V]) shard(d Digest) *shard[V] { return &c.shards[d[0]%shards] }

// Get returns the entry for d.
func (c *Cache[V]) Get(d Digest) (V, bool) {
	s := c.shard(d)
	s.mu.RLock()
	v, ok := s.m[d]
	s.mu.RUnlock()
	return v, ok
}

// Put stores v for d, first evicting a random tenth of d's shard when it
// is full.
func (c *Cache[V]) Put(d Digest, v V) {
	s := c.shard(d)
	s.mu.Lock()
	if _, ok := s.m[d]; !ok && len(s.m) >= c.limit {
		n := max(1, c.limit/10)
		for k := range s.m {
			delete(s.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	s.m[d] = v
	s.mu.Unlock()
}

// Delete removes the entry for d.
func (c *Cache[V]) Delete(d Digest) {
	s := c.shard(d)
	s.mu.Lock()
	delete(s.m, d)
	s.mu.Unlock()
}

// DeleteFunc removes every entry for which del returns true (a revoked
// key's or grant's entries, whatever credential they were cached under).
// It visits every entry, one shard at a time, under the shard's read
// lock, so lookups go on beside it (every instance runs it for each
// revocation another instance makes, and mostly finds nothing), and
// write-locks a shard only to delete what it found there.
func (c *Cache[V]) DeleteFunc(del func(V) bool) {
	var found []Digest
	for i := range c.shards {
		s := &c.shards[i]
		found = found[:0]
		s.mu.RLock()
		for k, v := range s.m {
			if del(v) {
				found = append(found, k)
			}
		}
		s.mu.RUnlock()
		if len(found) == 0 {
			continue
		}
		s.mu.Lock()
		for _, k := range found {
			if v, ok := s.m[k]; ok && del(v) { // not replaced meanwhile by one to keep
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// Len returns the number of entries, for tests and monitoring.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
