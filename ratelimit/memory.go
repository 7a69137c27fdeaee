package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

const memShards = 64

// Memory is the in-memory limiter: exact, per process. It is sharded (64
// locks, a key's shard chosen by a seeded hash) so concurrent decisions on
// different keys rarely contend, and it evicts keys whose windows have all
// ended, so memory is bounded by the keys active within the longest window.
// The zero value is not usable; call [NewMemory].
type Memory struct {
	seed   maphash.Seed
	now    func() time.Time
	shards [memShards]memShard
}

type memShard struct {
	mu      sync.Mutex
	m       map[string]*keyState
	inserts int
	sweepAt int
}

// keyState is a key's count in the current window of each policy window.
type keyState struct {
	w [MaxWindows]winState
}

type winState struct {
	period int64 // nanoseconds; 0 for an unused slot
	idx    int64 // which window (now / period)
	count  int64
}

var _ Limiter = (*Memory)(nil)

// MemoryConfig holds the optional settings of [NewMemory].
type MemoryConfig struct {
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// NewMemory returns an empty in-memory limiter.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{seed: maphash.MakeSeed(), now: cfg.Now}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]*keyState)
		m.shards[i].sweepAt = 1024
	}
	return m
}

// Allow implements [Limiter] at the configured clock's time.
func (m *Memory) Allow(_ context.Context, key string, p Policy, cost int64) (Result, error) {
	return m.AllowAt(key, p, cost, m.now()), nil
}

// AllowAt decides at time now. It never fails; it does not allocate for a
// key it has seen in the current windows.
func (m *Memory) AllowAt(key string, p Policy, cost int64, now time.Time) Result {
	s := &m.shards[maphash.String(m.seed, key)%memShards]
	nowNanos := now.UnixNano()
	var used [MaxWindows]int64
	var resets [MaxWindows]time.Time
	var r Result

	s.mu.Lock()
	st := s.m[key]
	if st == nil {
		st = &keyState{}
		s.m[key] = st
		s.inserts++
		if s.inserts >= s.sweepAt {
			s.sweep(nowNanos)
		}
	}
	for i, w := range p.Windows {
		idx, end := windowBounds(nowNanos, w.Period)
		resets[i] = end
		ws := &st.w[i]
		// ws.idx > idx only if the clock went backwards: stay conservative
		// and count what the later window holds.
		if ws.period == int64(w.Period) && ws.idx >= idx {
			used[i] = ws.count
		}
	}
	decide(p, used[:len(p.Windows)], resets[:len(p.Windows)], now, cost, &r)
	if r.Allowed {
		for i, w := range p.Windows {
			idx, _ := windowBounds(nowNanos, w.Period)
			st.w[i] = winState{period: int64(w.Period), idx: max(idx, st.w[i].idx), count: r.Windows[i].Used}
		}
	}
	s.mu.Unlock()
	return r
}

// sweep drops keys whose every window has ended: their state equals a
// fresh key's. It runs after a number of inserts proportional to the
// shard's size, so its cost is amortised O(1) per insert.
func (s *memShard) sweep(nowNanos int64) {
	for k, st := range s.m {
		live := false
		for _, ws := range st.w {
			if ws.period != 0 && nowNanos/ws.period == ws.idx {
				live = true
				break
			}
		}
		if !live {
			delete(s.m, k)
		}
	}
	s.inserts = 0
	s.sweepAt = max(1024, len(s.m))
}

// Len returns the number of keys held, for monitoring and tests.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
