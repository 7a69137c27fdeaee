package main_test

import (
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKilledWithDeliveriesInFlight kills the server with SIGKILL while its
// webhook deliveries hang at the receiver, restarts it on the same
// database, and checks that every event is then delivered at least once.
func TestKilledWithDeliveriesInFlight(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := start(t, db)
	key := s.demo["test API key (sandbox)"]

	var mu sync.Mutex
	got := map[string]int{}
	hang := true
	inFlight := 0
	ln, err := netListen()
	require.NoError(t, err)
	rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		h := hang
		if !h {
			got[r.Header.Get("webhook-id")]++
		}
		mu.Unlock()
		if h {
			mu.Lock()
			inFlight++
			mu.Unlock()
			time.Sleep(30 * time.Second) // in flight when the server dies
		}
	})}
	go func() { _ = rcv.Serve(ln) }()
	defer rcv.Close()
	require.Equal(t, 201, s.do("POST", "/v1/webhooks", key, map[string]any{"url": "http://" + ln.Addr().String() + "/", "events": []string{"customer.created"}}).status)
	const n = 12
	for range n {
		require.Equal(t, 201, s.do("POST", "/v1/customers", key, map[string]any{"first_name": "A", "last_name": "B", "email": "a@example.com"}).status)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return inFlight >= 8 }, 20*time.Second, 50*time.Millisecond,
		"the dispatcher's workers are all busy sending")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	_ = s.cmd.Wait()

	mu.Lock()
	hang = false
	mu.Unlock()
	// The restarted server takes the dead one's deliveries over once their
	// 45 s leases expire; unclaimed ones go at once.
	s2 := start(t, db)
	defer func() { _ = s2.cmd.Process.Signal(syscall.SIGTERM) }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n }, 90*time.Second, 250*time.Millisecond,
		"every event is delivered after the restart")
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, got, n)
	t.Logf("killed with %d deliveries in flight; after the restart all %d events were delivered", inFlight, len(got))
}
