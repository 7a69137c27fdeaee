package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Invalidator is what [RunInvalidator] checks: gatehouse.Invalidator,
// which carries cache invalidations between the instances of a
// deployment.
type Invalidator interface {
	Invalidate(ctx context.Context, topic, key string) error
	OnInvalidate(topic string, fn func(key string)) (cancel func())
}

// RunInvalidator checks an implementation of gatehouse.Invalidator (one
// over Redis pub/sub, say, beside sqlstore's over PostgreSQL). newPair
// returns two invalidators that stand for two instances of one
// deployment (two connections, pools or clients on one backend), of
// their own: no other subtest may hear what they send. An implementation
// that reaches its own process only returns the same one twice.
//
// It checks that an invalidation reaches the other instance's handlers
// and the sender's own, of its topic only, with its key intact, and no
// longer once a handler is cancelled. A handler may also be called with
// the empty key (messages may have been missed) at any time; the suite
// ignores those. Messages sent before a listener is ready may be lost,
// so it first waits until each instance hears the other.
func RunInvalidator(t *testing.T, newPair func(t *testing.T) (a, b Invalidator)) {
	t.Helper()
	t.Run("Crosses", func(t *testing.T) {
		t.Parallel()
		a, b := newPair(t)
		ctx := t.Context()
		keysB, grantsB, keysA := &heard{}, &heard{}, &heard{}
		cancelB := b.OnInvalidate("apikey", keysB.add)
		b.OnInvalidate("oauth-grant", grantsB.add)
		a.OnInvalidate("apikey", keysA.add)
		ready(t, a, b)
		ready(t, b, a)

		ok(t, a.Invalidate(ctx, "apikey", "key_1"), "invalidate")
		waitFor(t, func() bool { return keysB.has("key_1") && keysA.has("key_1") }, "the other instance and the sender hear it")
		if grantsB.has("key_1") {
			t.Fatal("a handler of another topic heard it")
		}
		const odd = "a key with spaces, ünïcode and \"quotes\""
		ok(t, b.Invalidate(ctx, "oauth-grant", odd), "invalidate")
		waitFor(t, func() bool { return grantsB.has(odd) }, "a key with spaces and unicode, intact")

		cancelB()
		ok(t, a.Invalidate(ctx, "apikey", "key_after_cancel"), "invalidate")
		ok(t, a.Invalidate(ctx, "oauth-grant", "marker"), "invalidate")
		waitFor(t, func() bool { return grantsB.has("marker") && keysA.has("key_after_cancel") }, "the messages after the cancel")
		if keysB.has("key_after_cancel") {
			t.Fatal("a cancelled handler heard a message")
		}
	})
}

// heard collects the keys a handler receives.
type heard struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (h *heard) add(k string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys = map[string]bool{}
	}
	h.keys[k] = true
}

func (h *heard) has(k string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keys[k]
}

// waitFor polls cond for up to 30 s: a wait for delivery, not a bound on
// its time.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ready waits until to hears what from sends, sending again while it
// does not (a message sent before a listener is up may be lost).
func ready(t *testing.T, from, to Invalidator) {
	t.Helper()
	h := &heard{}
	cancel := to.OnInvalidate("storagetest-probe", h.add)
	defer cancel()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		ping := fmt.Sprintf("ping-%d", i)
		ok(t, from.Invalidate(t.Context(), "storagetest-probe", ping), "probe")
		for range 10 {
			if h.has(ping) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatal("the other instance heard nothing within 30 s")
		}
	}
}
