// Package fanout is what every gatehouse.Invalidator of this module
// (sqlstore's, redisinv's) is made of: the registry of handlers by topic,
// the rule for what a message may hold, and the lifecycle and retries of
// the background loop that hears other instances.
package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Hub holds handlers by topic. The zero value is ready to use; it is safe
// for concurrent use.
type Hub struct {
	mu   sync.Mutex
	next int
	subs map[string]map[int]func(string) // topic → id → handler
}

// Add registers fn for topic until cancel is called.
func (h *Hub) Add(topic string, fn func(key string)) (cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[string]map[int]func(string){}
	}
	if h.subs[topic] == nil {
		h.subs[topic] = map[int]func(string){}
	}
	id := h.next
	h.next++
	h.subs[topic][id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs[topic], id)
	}
}

// Dispatch runs topic's handlers for key, outside the lock (a handler may
// add or cancel handlers); an empty topic runs every handler with the
// empty key: invalidations may have been missed.
func (h *Hub) Dispatch(topic, key string) {
	h.mu.Lock()
	var fns []func(string)
	for t, m := range h.subs {
		if topic == "" || t == topic {
			for _, fn := range m {
				fns = append(fns, fn)
			}
		}
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn(key)
	}
}

// MaxMessage bounds topic and key together: PostgreSQL refuses a NOTIFY
// payload of 8,000 bytes or more, and every Invalidator of the module
// keeps to the same rule.
const MaxMessage = 7900

// Message returns the payload "topic key", or an error, named by pkg, when
// the topic is not one word or the two are longer than MaxMessage.
func Message(pkg, topic, key string) (string, error) {
	if topic == "" || strings.ContainsRune(topic, ' ') || len(topic)+1+len(key) > MaxMessage {
		return "", fmt.Errorf("%s: invalidate: the topic must be one word and topic and key at most %d bytes", pkg, MaxMessage)
	}
	return topic + " " + key, nil
}

// Parse splits a payload Message made.
func Parse(payload string) (topic, key string) {
	topic, key, _ = strings.Cut(payload, " ")
	return topic, key
}

// Worker runs an Invalidator's one background loop (a listener, a
// subscription, a poller): started by the first Start, never after Stop.
// The zero value is ready to use.
type Worker struct {
	mu      sync.Mutex
	started bool
	stopped bool
	stop    context.CancelFunc
	done    chan struct{}
}

// Start runs run in a goroutine, with a context that Stop cancels,
// unless it was started or stopped before.
func (w *Worker) Start(run func(ctx context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return
	}
	w.started = true
	ctx, stop := context.WithCancel(context.Background())
	w.stop, w.done = stop, make(chan struct{})
	go func() {
		defer close(w.done)
		run(ctx)
	}()
}

// Stop cancels the loop, if it runs, and waits for it to return.
func (w *Worker) Stop() {
	w.mu.Lock()
	w.stopped = true
	stop, done := w.stop, w.done
	w.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Retry calls once until ctx ends: after each failure it logs msg (with
// args, the wait and the error) and waits, 100 ms at first and twice as
// long after each failure in a row, up to 5 s; a call that reports it got
// through (a LISTEN or SUBSCRIBE that took) starts the wait over.
func Retry(ctx context.Context, log *slog.Logger, msg string, args []any, once func(ctx context.Context) (bool, error)) {
	wait := 100 * time.Millisecond
	for {
		through, err := once(ctx)
		if ctx.Err() != nil {
			return
		}
		if through {
			wait = 100 * time.Millisecond
		}
		log.Warn(msg, append(args, "retry_in", wait, "err", err)...)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
