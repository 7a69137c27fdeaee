package webhook_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/webhook"
)

// TestSlowEndpointDoesNotHoldEveryWorker: an endpoint that hangs, with a
// backlog due before everyone else's, holds at most PerEndpoint workers
// (default: half of them); another endpoint's delivery, due after that
// whole backlog, is delivered while the slow one still hangs. Then the
// backlog drains, never more than PerEndpoint at a time.
func TestSlowEndpointDoesNotHoldEveryWorker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := memory.New()
	mgr, err := webhook.New(st, webhook.Config{Events: events, Guard: loopback})
	require.NoError(t, err)

	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var inFlight, most atomic.Int32
	slow := newReceiver(t, func(int, http.ResponseWriter) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
	})
	fast := newReceiver(t, func(int, http.ResponseWriter) {})
	_, err = mgr.Create(ctx, webhook.SubscriptionParams{OrganisationID: "org", URL: slow.srv.URL, Events: []string{"booking.created"}})
	require.NoError(t, err)
	_, err = mgr.Create(ctx, webhook.SubscriptionParams{OrganisationID: "org", URL: fast.srv.URL, Events: []string{"payment.completed"}})
	require.NoError(t, err)
	for range 6 {
		require.NoError(t, mgr.Enqueue(ctx, webhook.Event{OrganisationID: "org", Type: "booking.created", Data: 1}))
	}
	// Due after the whole backlog: the claim, oldest first, reaches it last.
	require.NoError(t, mgr.Enqueue(ctx, webhook.Event{OrganisationID: "org", Type: "payment.completed", Data: 2}))

	d, err := webhook.NewDispatcher(st, mgr, webhook.DispatcherConfig{Guard: loopback, Workers: 2, Timeout: time.Minute, PollInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { _ = d.Run(runCtx); close(ran) }()
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }); stop(); <-ran })

	require.Eventually(t, func() bool { return slow.count() >= 1 }, 10*time.Second, 5*time.Millisecond, "the slow endpoint's first delivery hangs")
	require.Eventually(t, func() bool { return fast.count() == 1 }, 10*time.Second, 5*time.Millisecond,
		"the other endpoint's delivery waits behind the slow endpoint's backlog")
	assert.Equal(t, 1, slow.count(), "the slow endpoint holds one worker of two, not both")

	releaseOnce.Do(func() { close(release) })
	require.Eventually(t, func() bool { return slow.count() == 6 }, 10*time.Second, 5*time.Millisecond, "the backlog drains")
	assert.Equal(t, int32(1), most.Load(), "never more than PerEndpoint in flight to one endpoint")
}

// TestRunOnceCountsWhatItDelivered: RunOnce reports the deliveries it made,
// not those it claimed and gave back for being over PerEndpoint, and never
// has more than PerEndpoint in flight to one endpoint.
func TestRunOnceCountsWhatItDelivered(t *testing.T) {
	t.Parallel()
	st := memory.New()
	mgr, err := webhook.New(st, webhook.Config{Events: events, Guard: loopback})
	require.NoError(t, err)
	var inFlight, most atomic.Int32
	rv := newReceiver(t, func(int, http.ResponseWriter) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond) // long enough for deliveries to overlap
	})
	_, err = mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: rv.srv.URL, Events: []string{"*"}})
	require.NoError(t, err)
	for range 5 {
		require.NoError(t, mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: 1}))
	}
	d, err := webhook.NewDispatcher(st, mgr, webhook.DispatcherConfig{Guard: loopback, Workers: 4, PerEndpoint: 2})
	require.NoError(t, err)
	total := 0
	for range 10 {
		before := rv.count()
		n, err := d.RunOnce(t.Context())
		require.NoError(t, err)
		assert.Equal(t, rv.count()-before, n, "what RunOnce reports is what the endpoint received")
		if total += n; total == 5 {
			break
		}
	}
	assert.Equal(t, 5, total, "every delivery once; none lost by being given back")
	assert.Equal(t, 5, rv.count())
	assert.LessOrEqual(t, most.Load(), int32(2), "never more than PerEndpoint in flight")
}
