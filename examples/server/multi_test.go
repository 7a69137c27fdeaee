package main_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// TestTwoInstances runs two server processes on one PostgreSQL (a schema of
// their own) and one Redis, as a deployment that outgrew one machine does.
func TestTwoInstances(t *testing.T) {
	redisURL := testenv.Redis(t)
	// Loopback is a trusted proxy, so the failed sign-ins below can come
	// from an address of their own: the per-address budget lives in the
	// Redis every run of the suite shares.
	a, pg := pgServer(t, "-redis", redisURL, "-trusted-proxies", "127.0.0.0/8")
	b := start(t, pg, "-redis", redisURL, "-trusted-proxies", "127.0.0.0/8")
	require.NotEmpty(t, a.demo["test API key (sandbox)"], "the first instance seeds the demo data")
	require.Empty(t, b.demo, "the second finds it there")
	key := a.demo["test API key (sandbox)"]

	// A token issued by one instance works on the other.
	at := a.passwordToken(t)
	require.Equal(t, 200, b.do("GET", "/v1/contacts/me", at, nil).status, "a token from A works on B")

	// Data written through one is read through the other.
	r := a.do("POST", "/v1/customers", key, map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
	require.Equal(t, 201, r.status)
	id := r.json(t)["id"].(string)
	require.Equal(t, 200, b.do("GET", "/v1/customers/"+id, key, nil).status)

	// A revocation on A is honoured by B at once: B hears it through
	// PostgreSQL's LISTEN/NOTIFY (the store's Invalidator) and drops its
	// cached copy; the 5 s cache TTL bounds it if the message is lost.
	require.Equal(t, 200, b.do("GET", "/v1/contacts/me", at, nil).status) // cached on B
	rv, _ := http.NewRequest("POST", a.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {at}}.Encode()))
	rv.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rv.SetBasicAuth(a.demo["OAuth client"], a.demo["client secret"])
	res, err := a.http.Do(rv)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 401, a.do("GET", "/v1/contacts/me", at, nil).status, "at once on A")
	start := time.Now()
	require.Eventually(t, func() bool { return b.do("GET", "/v1/contacts/me", at, nil).status == 401 }, 10*time.Second, 100*time.Millisecond)
	t.Logf("B refused the revoked token %.1f s after A revoked it", time.Since(start).Seconds())

	// So is an API key revoked by `admin key revoke`, a process of its own.
	made := admin(t, pg, "key", "create", "--org", "demo", "--name", "to revoke", "--scopes", "customers:read", "--env", "test")
	revocable := made["key"].(string)
	for _, s := range []*server{a, b} {
		require.Equal(t, 200, s.do("GET", "/v1/customers", revocable, nil).status) // cached on both
	}
	admin(t, pg, "key", "revoke", "--id", made["id"].(string))
	start = time.Now()
	for _, s := range []*server{a, b} {
		require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", revocable, nil).status == 401 }, 10*time.Second, 20*time.Millisecond)
	}
	t.Logf("both instances refused the key %.2f s after the admin command revoked it", time.Since(start).Seconds())

	// The rate limit is one budget across both instances.
	limited := admin(t, pg, "key", "create", "--org", "demo", "--name", "limited", "--scopes", "customers:read", "--env", "test", "--rate-limit", "4/h")["key"].(string)
	codes := []int{}
	for _, s := range []*server{a, b, a, b, a, b} {
		codes = append(codes, s.do("GET", "/v1/customers", limited, nil).status)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 429, 429}, codes)

	// Failed sign-ins are counted once for both instances: five wrong
	// passwords on each are the account's ten a minute, and then the
	// right one is refused on either.
	testenv.ClearOfMinuteBoundary(20 * time.Second)
	client := fmt.Sprintf("2001:db8:%x:%x::1", rand.IntN(1<<16), rand.IntN(1<<16)) // this run's own /64
	signIn := func(s *server, password string) int {
		f := a.demoPasswordForm() // B did not seed the demo data, so knows none of it
		f.Set("password", password)
		return s.postForm(t, "/oauth/token", f, "X-Forwarded-For", client)
	}
	for i := range 10 {
		require.Equal(t, 400, signIn([]*server{a, b}[i%2], "guess"))
	}
	assert.Equal(t, 429, signIn(b, a.demoPasswordForm().Get("password")), "the account is blocked on B")
	assert.Equal(t, 429, signIn(a, a.demoPasswordForm().Get("password")), "and on A")

	// Webhooks: events written through either instance are each delivered.
	var mu sync.Mutex
	got := map[string]int{}
	ln, err := netListen()
	require.NoError(t, err)
	rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
	})}
	go func() { _ = rcv.Serve(ln) }()
	defer rcv.Shutdown(context.Background())
	require.Equal(t, 201, a.do("POST", "/v1/webhooks", key, map[string]any{"url": "http://" + ln.Addr().String() + "/", "events": []string{"customer.created"}}).status)
	for i := range 20 {
		s := []*server{a, b}[i%2]
		require.Equal(t, 201, s.do("POST", "/v1/customers", key, map[string]any{"first_name": "C", "last_name": "D", "email": "c@example.com"}).status)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 20 }, 20*time.Second, 100*time.Millisecond)
	mu.Lock()
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	mu.Unlock()
	t.Logf("20 events written through two instances: %d delivered, %d duplicates", len(got), dups)
}
