package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 22, 10, 15, 30, 0, time.UTC)
	return func() time.Time { return t }
}

func serve(h http.Handler, p *gatehouse.Principal, mutate func(*http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/v1/bookings", nil)
	if p != nil {
		req = req.WithContext(gatehouse.NewContext(req.Context(), p))
	}
	if mutate != nil {
		mutate(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })

func TestMiddlewareHeadersAnd429(t *testing.T) {
	t.Parallel()
	now := fixedClock()
	mw, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{Now: now}), ratelimit.Config{IETFHeaders: true})
	require.NoError(t, err)
	h := mw.Handler(ok)
	key := &gatehouse.Principal{KeyID: "key_1"}

	rec := serve(h, key, nil)
	assert.Equal(t, 200, rec.Code)
	// The seed's example headers: the minute window runs out first.
	assert.Equal(t, "100", rec.Header().Get("X-RateLimit-Limit"))
	assert.Equal(t, "99", rec.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, strconv.FormatInt(time.Date(2026, 11, 22, 10, 16, 0, 0, time.UTC).Unix(), 10), rec.Header().Get("X-RateLimit-Reset"))
	assert.Equal(t, `"1000/h";q=1000;w=3600, "100/m";q=100;w=60`, rec.Header().Get("RateLimit-Policy"))
	// Seconds until each window resets, on the limiter's clock (10:15:30).
	assert.Equal(t, `"1000/h";r=999;t=2670, "100/m";r=99;t=30`, rec.Header().Get("RateLimit"))

	for range 99 {
		require.Equal(t, 200, serve(h, key, nil).Code)
	}
	rec = serve(h, key, nil)
	assert.Equal(t, 429, rec.Code)
	assert.Equal(t, "30", rec.Header().Get("Retry-After"))
	assert.Equal(t, "0", rec.Header().Get("X-RateLimit-Remaining"))
	var env struct {
		Error struct {
			Code    string
			Details ratelimit.RefusalDetails
		}
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
	assert.Equal(t, "RATE_LIMITED", env.Error.Code)
	assert.Equal(t, "100/m", env.Error.Details.Window)
	assert.EqualValues(t, 100, env.Error.Details.Limit)

	// Another key has its own budget.
	assert.Equal(t, 200, serve(h, &gatehouse.Principal{KeyID: "key_2"}, nil).Code)
}

func TestMiddlewarePolicies(t *testing.T) {
	t.Parallel()
	mw, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{Now: fixedClock()}), ratelimit.Config{
		Resolve: func(r *http.Request, p *gatehouse.Principal) string {
			if p != nil && p.RateLimitPolicy != "" {
				return p.RateLimitPolicy // the key's own override
			}
			if p != nil && p.Organisation == "bigcorp" {
				return "enterprise" // the organisation's plan
			}
			return ""
		},
	})
	require.NoError(t, err)
	h := mw.Handler(ok)
	cases := []struct {
		p     *gatehouse.Principal
		limit string
	}{
		{&gatehouse.Principal{KeyID: "a"}, "100"},
		{&gatehouse.Principal{KeyID: "b", Organisation: "bigcorp"}, "1000"},
		{&gatehouse.Principal{KeyID: "c", RateLimitPolicy: "5/m,50/h"}, "5"},
		{&gatehouse.Principal{KeyID: "d", RateLimitPolicy: "not a policy"}, "100"},
		{&gatehouse.Principal{KeyID: "e", RateLimitPolicy: "enterprise"}, "1000"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.limit, serve(h, tc.p, nil).Header().Get("X-RateLimit-Limit"), tc.p.KeyID)
	}
}

func TestMiddlewareCost(t *testing.T) {
	t.Parallel()
	mw, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{Now: fixedClock()}), ratelimit.Config{
		Cost: func(r *http.Request) int64 { n, _ := strconv.ParseInt(r.Header.Get("X-Batch"), 10, 64); return n },
	})
	require.NoError(t, err)
	h := mw.Handler(ok)
	p := &gatehouse.Principal{KeyID: "k"}
	rec := serve(h, p, func(r *http.Request) { r.Header.Set("X-Batch", "60") })
	assert.Equal(t, "40", rec.Header().Get("X-RateLimit-Remaining"))
	rec = serve(h, p, func(r *http.Request) { r.Header.Set("X-Batch", "41") })
	assert.Equal(t, 429, rec.Code)
	rec = serve(h, p, func(r *http.Request) { r.Header.Set("X-Batch", "0") })
	assert.Equal(t, "39", rec.Header().Get("X-RateLimit-Remaining"), "a cost below 1 counts as 1")
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		remote, xff string
		trusted     []netip.Prefix
		want        string
	}{
		{"203.0.113.9:4000", "", nil, "203.0.113.9"},
		{"203.0.113.9:4000", "1.2.3.4", nil, "203.0.113.9"},
		{"203.0.113.9:4000", "1.2.3.4", trusted, "203.0.113.9"},
		{"10.0.0.5:4000", "1.2.3.4", trusted, "1.2.3.4"},
		{"10.0.0.5:4000", "6.6.6.6, 1.2.3.4, 10.0.0.7", trusted, "1.2.3.4"},
		{"10.0.0.5:4000", "garbage, 1.2.3.4", trusted, "1.2.3.4"},
		{"10.0.0.5:4000", "1.2.3.4, garbage", trusted, "10.0.0.5"},
		{"[2001:db8::1]:443", "", nil, "2001:db8::1"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		assert.Equal(t, tc.want, ratelimit.ClientIP(r, tc.trusted), "%s %s", tc.remote, tc.xff)
	}
}

func TestAddressKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.9":                 "203.0.113.9",
		"::ffff:203.0.113.9":          "203.0.113.9",
		"2001:db8:1:2:aaaa::1":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ff:1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":             "2001:db8:1:3::/64",
		"fe80::1%eth0":                "fe80::/64",
		"not an address":              "not an address",
		"":                            "",
	} {
		assert.Equal(t, want, ratelimit.AddressKey(in), in)
	}
}

// TestAddressKeyOfIPv4DoesNotAllocate: every per-address limit computes
// it on every request. Not parallel: AllocsPerRun counts the process.
func TestAddressKeyOfIPv4DoesNotAllocate(t *testing.T) {
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = ratelimit.AddressKey("203.0.113.9") }), "an IPv4 address is its own key")
}

func TestAnonymousIPv6CountsBySubnet(t *testing.T) {
	t.Parallel()
	anon := ratelimit.MustPolicy("token-endpoint", "2/m")
	mw, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.Config{Anonymous: &anon})
	require.NoError(t, err)
	h := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	from := func(remote string) int {
		r := httptest.NewRequest("POST", "/oauth/token", nil)
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	testenv.ClearOfMinuteBoundary(5 * time.Second)
	assert.Equal(t, 200, from("[2001:db8:1:2::1]:5000"))
	assert.Equal(t, 200, from("[2001:db8:1:2::2]:5000"))
	assert.Equal(t, 429, from("[2001:db8:1:2::3]:5000"), "a new address in the same /64 is the same client")
	assert.Equal(t, 200, from("[2001:db8:1:3::1]:5000"), "another /64 is another client")
}

func TestAnonymousByIP(t *testing.T) {
	t.Parallel()
	anon := ratelimit.MustPolicy("token-endpoint", "2/m")
	mw, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{Now: fixedClock()}), ratelimit.Config{Anonymous: &anon})
	require.NoError(t, err)
	h := mw.Handler(ok)
	from := func(ip string) func(*http.Request) { return func(r *http.Request) { r.RemoteAddr = ip + ":1234" } }
	assert.Equal(t, 200, serve(h, nil, from("192.0.2.1")).Code)
	assert.Equal(t, 200, serve(h, nil, from("192.0.2.1")).Code)
	assert.Equal(t, 429, serve(h, nil, from("192.0.2.1")).Code)
	assert.Equal(t, 200, serve(h, nil, from("192.0.2.2")).Code)
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, string, ratelimit.Policy, int64) (ratelimit.Result, error) {
	return ratelimit.Result{}, errors.New("dial tcp 127.0.0.1:6379: connection refused")
}

func TestLimiterFailureIs503NotA500(t *testing.T) {
	t.Parallel()
	mw, err := ratelimit.New(brokenLimiter{}, ratelimit.Config{})
	require.NoError(t, err)
	rec := serve(mw.Handler(ok), &gatehouse.Principal{KeyID: "k"}, nil)
	assert.Equal(t, 503, rec.Code)
	assert.NotContains(t, rec.Body.String(), "6379")
	_, err = ratelimit.New(nil, ratelimit.Config{})
	assert.Error(t, err)
}

func TestFailoverModes(t *testing.T) {
	t.Parallel()
	p := ratelimit.MustPolicy("", "2/m")
	for _, tc := range []struct {
		mode   ratelimit.FailureMode
		status []int
	}{
		{ratelimit.Degrade, []int{200, 200, 429}},
		{ratelimit.FailOpen, []int{200, 200, 200}},
		{ratelimit.FailClosed, []int{503, 503, 503}},
	} {
		f := ratelimit.NewFailover(brokenLimiter{}, ratelimit.FailoverConfig{Mode: tc.mode, Now: fixedClock()})
		mw, err := ratelimit.New(f, ratelimit.Config{Default: &p})
		require.NoError(t, err)
		for i, want := range tc.status {
			rec := serve(mw.Handler(ok), &gatehouse.Principal{KeyID: "k"}, nil)
			assert.Equal(t, want, rec.Code, "mode %d request %d", tc.mode, i)
			if tc.mode == ratelimit.FailOpen {
				assert.Empty(t, rec.Header().Get("X-RateLimit-Remaining"), "fail-open reports no made-up figures")
			}
		}
		assert.EqualValues(t, 1, f.Failures(), "the cooldown spares the dead primary")
		assert.EqualValues(t, 3, f.DegradedDecisions())
	}
}

func BenchmarkMemory(b *testing.B) {
	one := ratelimit.MustPolicy("", "1000000000/h")
	two := ratelimit.MustPolicy("", "1000000000/h,100000000/m")
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "key:" + itoa(i)
	}
	for _, bc := range []struct {
		name string
		p    ratelimit.Policy
	}{{"one-window", one}, {"two-windows", two}} {
		b.Run(bc.name, func(b *testing.B) {
			lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			now := time.Now()
			for _, k := range keys {
				lim.AllowAt(k, bc.p, 1, now)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					lim.AllowAt(keys[i%len(keys)], bc.p, 1, now)
					i += 7
				}
			})
		})
	}
}

// BenchmarkXTimeRateSyncMap is the peer measured beside BenchmarkMemory:
// golang.org/x/time/rate, one limiter per key behind a sync.Map (one
// window only: it cannot express two).
func BenchmarkXTimeRateSyncMap(b *testing.B) {
	var m sync.Map
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "key:" + itoa(i)
		m.Store(keys[i], rate.NewLimiter(rate.Limit(1e9/3600.0), 1e9))
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			v, _ := m.Load(keys[i%len(keys)])
			v.(*rate.Limiter).AllowN(now, 1)
			i += 7
		}
	})
}

// BenchmarkBytesPerKey reports the memory the in-memory limiter holds per
// key with 10^4, 10^5 and 10^6 keys, each with a two-window policy.
func BenchmarkBytesPerKey(b *testing.B) {
	p := ratelimit.MustPolicy("", "1000/h,100/m")
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(itoa(n), func(b *testing.B) {
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
				now := time.Now()
				for i := range n {
					lim.AllowAt("key_"+itoa(i), p, 1, now)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "bytes/key")
				runtime.KeepAlive(lim)
			}
		})
	}
}

func newRand(seed uint64) *mrand.Rand { return mrand.New(mrand.NewPCG(seed, seed)) }

// FuzzClientIP: X-Forwarded-For and the peer address are the client's to
// choose. Whatever they hold, ClientIP names either the peer's host or an
// address the header carried, and only an address when the peer is a
// trusted proxy; AddressKey of an address is stable.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.5:4000", "6.6.6.6, 1.2.3.4, 10.0.0.7")
	f.Add("203.0.113.9:4000", "1.2.3.4")
	f.Add("[2001:db8::1]:443", "2001:db8:1:2::5,garbage")
	f.Add("10.0.0.5:4000", "::ffff:10.0.0.9, fe80::1%eth0")
	f.Add("no port", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/48")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		got := ratelimit.ClientIP(r, trusted)
		if got != host {
			if _, err := netip.ParseAddr(got); err != nil {
				t.Fatalf("ClientIP = %q: neither the peer %q nor an address", got, host)
			}
			if !strings.Contains(xff, got) {
				t.Fatalf("ClientIP = %q, which X-Forwarded-For %q does not hold", got, xff)
			}
			if a, err := netip.ParseAddr(host); err != nil || !slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) }) {
				t.Fatalf("believed X-Forwarded-For from an untrusted peer %q", host)
			}
		}
		if ratelimit.ClientIP(r, nil) != host {
			t.Fatalf("without trusted proxies ClientIP must be the peer %q", host)
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			return
		}
		k := ratelimit.AddressKey(got)
		a = a.Unmap().WithZone("")
		if a.Is4() {
			if k != a.String() {
				t.Fatalf("AddressKey(%q) = %q, want the IPv4 address %s", got, k, a)
			}
			return
		}
		p, err := netip.ParsePrefix(k)
		if err != nil || p.Bits() != 64 || !p.Contains(a) || p != p.Masked() {
			t.Fatalf("AddressKey(%q) = %q, want the /64 that holds it", got, k)
		}
	})
}

// TestStatusCountsNothing: StatusHandler answers a caller with its
// windows, in the headers and the body, as many times as it is asked,
// counting none of it, on memory and on Redis; an exhausted window shows
// zero remaining and the handler still answers 200.
func TestStatusCountsNothing(t *testing.T) {
	limiters := map[string]func(t *testing.T) ratelimit.Limiter{
		"memory": func(*testing.T) ratelimit.Limiter { return ratelimit.NewMemory(ratelimit.MemoryConfig{}) },
		"redis": func(t *testing.T) ratelimit.Limiter {
			l, _ := newRedisLimiter(t, redisClient(t))
			return l
		},
	}
	for name, limiter := range limiters {
		t.Run(name, func(t *testing.T) {
			waitForFreshMinute(t)
			pol := ratelimit.MustPolicy("small", "50/h,3/m")
			mw, err := ratelimit.New(limiter(t), ratelimit.Config{Default: &pol})
			require.NoError(t, err)
			key := &gatehouse.Principal{KeyID: testenv.Name("key_status")}
			for range 2 {
				require.Equal(t, 200, serve(mw.Handler(ok), key, nil).Code)
			}
			for range 3 {
				rec := serve(mw.StatusHandler(), key, nil)
				require.Equal(t, 200, rec.Code)
				assert.Equal(t, "1", rec.Header().Get("X-RateLimit-Remaining"), "the minute binds: 3 less the 2 spent")
				var st ratelimit.Status
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
				require.Len(t, st.Windows, 2)
				assert.Equal(t, ratelimit.WindowStatus{Window: "50/h", Limit: 50, Used: 2, Remaining: 48, Reset: st.Windows[0].Reset}, st.Windows[0])
				assert.Equal(t, ratelimit.WindowStatus{Window: "3/m", Limit: 3, Used: 2, Remaining: 1, Reset: st.Windows[1].Reset}, st.Windows[1])
				assert.Equal(t, strconv.FormatInt(st.Windows[1].Reset, 10), rec.Header().Get("X-RateLimit-Reset"))
			}
			require.Equal(t, 200, serve(mw.Handler(ok), key, nil).Code, "the third request: the status counted nothing")
			require.Equal(t, 429, serve(mw.Handler(ok), key, nil).Code)
			rec := serve(mw.StatusHandler(), key, nil)
			assert.Equal(t, 200, rec.Code, "the status of an exhausted window")
			assert.Equal(t, "0", rec.Header().Get("X-RateLimit-Remaining"))
		})
	}
}
