package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

var events = []string{"booking.created", "booking.updated", "booking.cancelled", "payment.completed", "payment.refunded", "customer.created", "customer.updated", "staff.schedule_changed"}

var loopback = webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// receiver is a real HTTP endpoint that verifies what it gets and answers
// with respond.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []http.Header
	bodies  []string
	respond func(n int, w http.ResponseWriter)
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter)) *receiver {
	rv := &receiver{respond: respond}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		rv.got = append(rv.got, r.Header.Clone())
		rv.bodies = append(rv.bodies, string(b))
		n := len(rv.got)
		rv.mu.Unlock()
		rv.respond(n, w)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *receiver) count() int { rv.mu.Lock(); defer rv.mu.Unlock(); return len(rv.got) }

type fixture struct {
	store storage.Store
	clk   *clock
	mgr   *webhook.Manager
	sub   *storage.Subscription
}

func newFixture(t *testing.T, store storage.Store, url string, guard webhook.Guard) *fixture {
	clk := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	mgr, err := webhook.New(store, webhook.Config{Events: events, Guard: guard, Now: clk.Now})
	require.NoError(t, err)
	sub, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: url, Events: []string{"booking.*", "payment.completed"}})
	require.NoError(t, err)
	return &fixture{store: store, clk: clk, mgr: mgr, sub: sub}
}

func (f *fixture) dispatcher(t *testing.T, cfg webhook.DispatcherConfig) *webhook.Dispatcher {
	cfg.Now = f.clk.Now
	if cfg.Guard.Allow == nil {
		cfg.Guard = loopback
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = -1
	}
	d, err := webhook.NewDispatcher(f.store, f.mgr, cfg)
	require.NoError(t, err)
	return d
}

func (f *fixture) enqueue(t *testing.T, typ string) {
	require.NoError(t, f.mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: typ, Data: map[string]string{"id": "b1"}}))
}

func (f *fixture) deliveries(t *testing.T) []*storage.Delivery {
	ds, err := f.store.ListDeliveries(t.Context(), f.sub.ID, storage.Page{})
	require.NoError(t, err)
	return ds
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	mgr, err := webhook.New(memory.New(), webhook.Config{Events: events})
	require.NoError(t, err)
	cases := []struct {
		p      webhook.SubscriptionParams
		fields []string
	}{
		{webhook.SubscriptionParams{URL: "not a url", Events: []string{"booking.created"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h", Events: []string{"booking.exploded"}}, []string{"events"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h"}, []string{"events"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h", Events: []string{"*"}, Secret: "only-23-characters-long"}, []string{"secret"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h", Events: []string{"*"}, Secret: "whsec_bm90IGxvbmcgZW5vdWdo"}, []string{"secret"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h", Events: []string{"*"}, Secret: "a secret with a\ttab in it, long enough"}, []string{"secret"}},
		{webhook.SubscriptionParams{URL: "http://127.0.0.1/h", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "http://169.254.169.254/latest/meta-data", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "http://[::ffff:127.0.0.1]/h", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "http://localhost:8080/h", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "https://user:pw@example.com/h", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "https://93.184.215.14/h\xff", Events: []string{"*"}}, []string{"url"}},
		{webhook.SubscriptionParams{URL: "ftp://x", Events: []string{"nope"}, Secret: "x", Environment: "prod"}, []string{"environment", "url", "events", "secret"}},
	}
	for _, tc := range cases {
		_, err := mgr.Create(t.Context(), tc.p)
		e := apierror.From(err)
		require.Equal(t, 422, e.Status, "%+v", tc.p)
		var fields []string
		for _, fi := range e.Details.(apierror.FieldDetails).Errors {
			fields = append(fields, fi.Field)
		}
		assert.Equal(t, tc.fields, fields, "%+v", tc.p)
	}
	_, err = mgr.Create(t.Context(), webhook.SubscriptionParams{URL: "https://93.184.215.14/h", Events: []string{"booking.exploded"}})
	issue := apierror.From(err).Details.(apierror.FieldDetails).Errors[0].Issue
	assert.Equal(t, `"booking.exploded" is not a known event type or wildcard; the types are `+strings.Join(append(events, webhook.EventDisabled), ", "), issue,
		"an unknown type's issue names the known ones")
	assert.Equal(t, append(events, webhook.EventDisabled), mgr.EventTypes())
	s, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "o", URL: "https://93.184.215.14/h", Events: []string{"booking.*", "*"}})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(s.Secret, "whsec_"), "a secret is generated")
	assert.True(t, webhook.Matches("booking.*", "booking.created"))
	assert.False(t, webhook.Matches("booking.*", "bookings.created"))
	assert.False(t, webhook.Matches("booking.created", "booking.updated"))
}

func TestEnqueueRouting(t *testing.T) {
	t.Parallel()
	st := memory.New()
	f := newFixture(t, st, "https://93.184.215.14/a", webhook.Guard{})
	other, err := f.mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: "https://93.184.215.14/b", Events: []string{"customer.created"}})
	require.NoError(t, err)
	test, err := f.mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", Environment: "test", URL: "https://93.184.215.14/c", Events: []string{"*"}})
	require.NoError(t, err)
	f.enqueue(t, "booking.created")
	f.enqueue(t, "payment.refunded")
	assert.Len(t, f.deliveries(t), 1, "booking.* matches, payment.refunded does not")
	ds, _ := st.ListDeliveries(t.Context(), other.ID, storage.Page{})
	assert.Empty(t, ds)
	ds, _ = st.ListDeliveries(t.Context(), test.ID, storage.Page{})
	assert.Empty(t, ds, "live events never reach test subscriptions")
	assert.Error(t, f.mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "unknown.event"}))
}

// TestEnqueueRefusesOversizedPayloads: an event whose JSON body is over
// Config.MaxPayload is refused with its size and the limit, and nothing is
// stored; one at the limit goes.
// TestEnqueueRefusesBadIDsAndEnvironments: an event id goes out in the
// webhook-id header and into the signed content, so one with a space, a
// control character or more than 255 bytes is refused at Enqueue (it
// failed every attempt at send time); an environment other than live or
// test is refused (no subscription could match it, and the event was
// dropped without a word).
func TestEnqueueRefusesBadIDsAndEnvironments(t *testing.T) {
	t.Parallel()
	st := memory.New()
	mgr, err := webhook.New(st, webhook.Config{Events: events})
	require.NoError(t, err)
	sub, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: "https://93.184.215.14/a", Events: []string{"*"}})
	require.NoError(t, err)
	for _, id := range []string{"a b", "a\r\nX-Injected: 1", "a\x00", "é", strings.Repeat("a", 256)} {
		err := mgr.Enqueue(t.Context(), webhook.Event{ID: id, OrganisationID: "org", Type: "booking.created"})
		assert.ErrorContains(t, err, "must be 1 to 255 printable ASCII characters without spaces", "%q", id)
	}
	for _, env := range []string{"prod", "Live", " test"} {
		err := mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Environment: env, Type: "booking.created"})
		assert.ErrorContains(t, err, "must be live or test", "%q", env)
	}
	require.NoError(t, mgr.Enqueue(t.Context(), webhook.Event{ID: "evt_01J:abc-._~" + strings.Repeat("z", 240), OrganisationID: "org", Type: "booking.created"}))
	ds, err := st.ListDeliveries(t.Context(), sub.ID, storage.Page{})
	require.NoError(t, err)
	assert.Len(t, ds, 1, "only the valid event is stored")
}

func TestEnqueueRefusesOversizedPayloads(t *testing.T) {
	t.Parallel()
	st := memory.New()
	mgr, err := webhook.New(st, webhook.Config{Events: events, MaxPayload: 1000})
	require.NoError(t, err)
	sub, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: "https://93.184.215.14/a", Events: []string{"*"}})
	require.NoError(t, err)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	envelope := len(`{"type":"booking.created","timestamp":"2026-01-02T03:04:05Z","data":""}`)
	fits := webhook.Event{OrganisationID: "org", Type: "booking.created", At: at, Data: strings.Repeat("x", 1000-envelope)}
	require.NoError(t, mgr.Enqueue(t.Context(), fits), "1000 bytes: at the limit")
	tooBig := fits
	tooBig.Data = strings.Repeat("x", 1001-envelope)
	err = mgr.Enqueue(t.Context(), tooBig)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the booking.created event's payload is 1001 bytes; Config.MaxPayload allows 1000")
	ds, err := st.ListDeliveries(t.Context(), sub.ID, storage.Page{})
	require.NoError(t, err)
	assert.Len(t, ds, 1, "only the event that fits is stored")

	def, err := webhook.New(st, webhook.Config{Events: events})
	require.NoError(t, err)
	assert.NoError(t, def.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: strings.Repeat("x", 1<<19)}), "the default allows 1 MiB")
	assert.Error(t, def.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: strings.Repeat("x", 1<<20)}))
}

func TestDeliverySignedAndRecorded(t *testing.T) {
	t.Parallel()
	rv := newReceiver(t, func(int, http.ResponseWriter) {})
	f := newFixture(t, memory.New(), rv.srv.URL+"/hooks", loopback)
	f.enqueue(t, "booking.created")
	n, err := f.dispatcher(t, webhook.DispatcherConfig{}).RunOnce(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, 1, rv.count())
	h, body := rv.got[0], rv.bodies[0]
	require.NoError(t, webhook.Verify(h, []byte(body), f.clk.Now(), 0, f.sub.Secret))
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	assert.Equal(t, "booking.created", p["type"])
	assert.Equal(t, "2026-11-22T10:00:00Z", p["timestamp"])
	ds := f.deliveries(t)
	assert.Equal(t, storage.DeliveryDelivered, ds[0].Status)
	assert.Equal(t, ds[0].EventID, h.Get("webhook-id"))
	atts, _ := f.store.ListAttempts(t.Context(), ds[0].ID)
	require.Len(t, atts, 1)
	assert.Equal(t, 200, atts[0].StatusCode)
}

func TestFullRetryScheduleOnAFakeClock(t *testing.T) {
	t.Parallel()
	rv := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(503)
		_, _ = w.Write([]byte(strings.Repeat("x", 10000)))
	})
	f := newFixture(t, memory.New(), rv.srv.URL, loopback)
	d := f.dispatcher(t, webhook.DispatcherConfig{})
	f.enqueue(t, "booking.created")
	start := f.clk.Now()
	var at []time.Duration
	for range 20 {
		n, err := d.RunOnce(t.Context())
		require.NoError(t, err)
		if n == 1 {
			at = append(at, f.clk.Now().Sub(start))
		}
		ds := f.deliveries(t)
		if ds[0].Status != storage.DeliveryPending {
			break
		}
		f.clk.Set(ds[0].NextAttemptAt)
	}
	want := []time.Duration{0, 5 * time.Second}
	for _, d := range []time.Duration{5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour} {
		want = append(want, want[len(want)-1]+d)
	}
	assert.Equal(t, want, at, "attempts at 0, 5s, 5min, 30min, 2h, 5h, 10h, 10h after each other")
	ds := f.deliveries(t)
	assert.Equal(t, storage.DeliveryFailed, ds[0].Status)
	assert.Equal(t, 8, ds[0].Attempts)
	atts, _ := f.store.ListAttempts(t.Context(), ds[0].ID)
	require.Len(t, atts, 8)
	assert.Len(t, atts[0].ResponseBody, 4096, "bodies recorded up to 4 KiB")
	assert.Equal(t, "status 503", atts[0].Error)
	// The same webhook-id on every retry.
	for _, h := range rv.got {
		assert.Equal(t, rv.got[0].Get("webhook-id"), h.Get("webhook-id"))
	}
}

func TestStatusClassesAndRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		header string
		want   storage.DeliveryStatus
		next   time.Duration
	}{
		{"204", 204, "", storage.DeliveryDelivered, 0},
		{"301 is a failure", 301, "", storage.DeliveryPending, 5 * time.Second},
		{"400", 400, "", storage.DeliveryPending, 5 * time.Second},
		{"500", 500, "", storage.DeliveryPending, 5 * time.Second},
		{"429 with Retry-After", 429, "120", storage.DeliveryPending, 2 * time.Minute},
		{"Retry-After beyond bounds", 503, "999999", storage.DeliveryPending, 10 * time.Hour},
		{"410 disables", 410, "", storage.DeliveryFailed, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rv := newReceiver(t, func(_ int, w http.ResponseWriter) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				if tc.status == 301 {
					w.Header().Set("Location", "http://169.254.169.254/")
				}
				w.WriteHeader(tc.status)
			})
			f := newFixture(t, memory.New(), rv.srv.URL, loopback)
			f.enqueue(t, "booking.created")
			_, err := f.dispatcher(t, webhook.DispatcherConfig{}).RunOnce(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 1, rv.count(), "redirects are not followed")
			ds := f.deliveries(t)
			assert.Equal(t, tc.want, ds[0].Status)
			if tc.want == storage.DeliveryPending {
				assert.Equal(t, tc.next, ds[0].NextAttemptAt.Sub(f.clk.Now()))
			}
			sub, _ := f.store.GetSubscription(t.Context(), f.sub.ID)
			if tc.status == 410 {
				assert.False(t, sub.Enabled)
				assert.Contains(t, sub.DisabledReason, "410")
			} else {
				assert.True(t, sub.Enabled)
			}
		})
	}
}

func TestTimeoutAndDisableAfterContinuousFailure(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	rv := newReceiver(t, func(int, http.ResponseWriter) { <-block })
	st := memory.New()
	f := newFixture(t, st, rv.srv.URL, loopback)
	// A second subscription that hears about the disabling.
	watcher, err := f.mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: "https://93.184.215.14/w", Events: []string{"webhook.disabled"}})
	require.NoError(t, err)
	d := f.dispatcher(t, webhook.DispatcherConfig{Timeout: 100 * time.Millisecond, DisableAfter: 24 * time.Hour})
	f.enqueue(t, "booking.created")
	_, err = d.RunOnce(t.Context())
	require.NoError(t, err)
	ds := f.deliveries(t)
	atts, _ := st.ListAttempts(t.Context(), ds[0].ID)
	require.Len(t, atts, 1)
	assert.Regexp(t, `timeout|deadline exceeded`, atts[0].Error, "timeouts are failures")
	sub, _ := st.GetSubscription(t.Context(), f.sub.ID)
	require.False(t, sub.FailingSince.IsZero())

	f.clk.Add(25 * time.Hour)
	f.enqueue(t, "booking.updated")
	_, err = d.RunOnce(t.Context())
	require.NoError(t, err)
	sub, _ = st.GetSubscription(t.Context(), f.sub.ID)
	assert.False(t, sub.Enabled, "failing for longer than DisableAfter disables")
	wd, _ := st.ListDeliveries(t.Context(), watcher.ID, storage.Page{})
	require.Len(t, wd, 1)
	assert.Equal(t, "webhook.disabled", wd[0].EventType)
}

func TestRedelivery(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if fail.Load() {
			w.WriteHeader(500)
		}
	})
	f := newFixture(t, memory.New(), rv.srv.URL, loopback)
	d := f.dispatcher(t, webhook.DispatcherConfig{Schedule: []time.Duration{0}})
	f.enqueue(t, "booking.created")
	_, _ = d.RunOnce(t.Context())
	ds := f.deliveries(t)
	require.Equal(t, storage.DeliveryFailed, ds[0].Status)
	fail.Store(false)
	require.NoError(t, f.mgr.Redeliver(t.Context(), ds[0].ID))
	_, _ = d.RunOnce(t.Context())
	assert.Equal(t, storage.DeliveryDelivered, f.deliveries(t)[0].Status)
	assert.Equal(t, 2, rv.count())
	assert.Error(t, f.mgr.Redeliver(t.Context(), storage.NewID()))

	// An outage: three events fail, then all failed deliveries since a
	// time are recovered at once.
	fail.Store(true)
	for range 3 {
		f.enqueue(t, "booking.updated")
	}
	_, _ = d.RunOnce(t.Context())
	fail.Store(false)
	n, err := f.mgr.RecoverFailed(t.Context(), f.sub.ID, f.clk.Now().Add(-time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	_, _ = d.RunOnce(t.Context())
	for _, dl := range f.deliveries(t) {
		assert.Equal(t, storage.DeliveryDelivered, dl.Status)
	}
}

func TestSSRFGuardAtDialTime(t *testing.T) {
	t.Parallel()
	rv := newReceiver(t, func(int, http.ResponseWriter) {})
	st := memory.New()
	// Registered through an allowing guard, delivered through a strict one:
	// the address dialed is what is checked, so "localhost" (resolving to
	// 127.0.0.1, as a rebinding name would) is refused.
	f := newFixture(t, st, strings.Replace(rv.srv.URL, "127.0.0.1", "localhost", 1), loopback)
	f.enqueue(t, "booking.created")
	strict, err := webhook.NewDispatcher(st, f.mgr, webhook.DispatcherConfig{Now: f.clk.Now, Jitter: -1})
	require.NoError(t, err)
	_, err = strict.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, rv.count(), "no connection to loopback")
	atts, _ := st.ListAttempts(t.Context(), f.deliveries(t)[0].ID)
	require.Len(t, atts, 1)
	assert.Contains(t, atts[0].Error, "may not reach")
	g := webhook.Guard{}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "ff02::1"} {
		assert.False(t, g.Permitted(netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::ffff:93.184.215.14"} {
		assert.True(t, g.Permitted(netip.MustParseAddr(a)), a)
	}
}

// killable fails every write once killed: a dispatcher that "dies" can no
// longer report back, exactly as a killed process cannot.
type killable struct {
	storage.Store
	dead atomic.Bool
}

func (k *killable) CompleteDelivery(ctx context.Context, r storage.DeliveryResult) error {
	if k.dead.Load() {
		return errors.New("process killed")
	}
	return k.Store.CompleteDelivery(ctx, r)
}

func TestCrashedDispatcherLosesNothing(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	rv := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			entered <- struct{}{}
			<-release // the first dispatcher's attempt hangs …
		}
	})
	st := memory.New()
	f := newFixture(t, st, rv.srv.URL, loopback)
	f.enqueue(t, "booking.created")
	k := &killable{Store: st}
	first, err := webhook.NewDispatcher(k, f.mgr, webhook.DispatcherConfig{Now: f.clk.Now, Guard: loopback, Timeout: 10 * time.Second, Lease: time.Minute})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { _, _ = first.RunOnce(t.Context()); close(done) }()
	<-entered
	k.dead.Store(true) // … and the process dies mid-delivery.
	close(release)
	<-done
	require.Equal(t, storage.DeliveryPending, f.deliveries(t)[0].Status, "nothing was recorded")

	second := f.dispatcher(t, webhook.DispatcherConfig{Owner: "second"})
	n, err := second.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "the lease still holds")
	f.clk.Add(time.Minute)
	n, err = second.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n, "claimable again after the lease")
	assert.Equal(t, storage.DeliveryDelivered, f.deliveries(t)[0].Status)
	assert.Equal(t, 2, rv.count(), "delivered at least once (twice: the dead one's attempt reached the receiver)")
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	rv := newReceiver(t, func(int, http.ResponseWriter) {
		entered <- struct{}{}
		time.Sleep(200 * time.Millisecond)
	})
	f := newFixture(t, memory.New(), rv.srv.URL, loopback)
	f.enqueue(t, "booking.created")
	d := f.dispatcher(t, webhook.DispatcherConfig{PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-entered
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, storage.DeliveryDelivered, f.deliveries(t)[0].Status, "the delivery in flight finished before Run returned")
}

// TestTwoDispatchersOnPostgres: two dispatchers, each with its own store
// handle, share one PostgreSQL outbox and deliver 1,000 events to a
// counting receiver.
func TestTwoDispatchersOnPostgres(t *testing.T) {
	dsn := testenv.Postgres(t)
	prefix := testenv.Name("wh") + "_"
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(t.Context(), dsn, sqlstore.Config{TablePrefix: prefix, MaxOpenConns: 8})
		require.NoError(t, err)
		return s
	}
	a, b := open(), open()
	require.NoError(t, a.Migrate(t.Context()))
	t.Cleanup(func() {
		for _, tb := range []string{"organisations", "users", "clients", "tokens", "consents", "api_keys", "api_key_usage", "subscriptions", "events", "deliveries", "attempts", "schema_migrations"} {
			_, _ = a.DB().ExecContext(context.Background(), `DROP TABLE IF EXISTS "`+prefix+tb+`"`)
		}
		_ = a.Close()
		_ = b.Close()
	})
	var mu sync.Mutex
	seen := map[string]int{}
	inFlight := map[string]bool{}
	concurrent := 0
	rv := newReceiver(t, func(int, http.ResponseWriter) {})
	rv.respond = nil
	rv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		if inFlight[id] {
			concurrent++
		}
		inFlight[id] = true
		seen[id]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inFlight[id] = false
		mu.Unlock()
	})
	mgr, err := webhook.New(a, webhook.Config{Events: events, Guard: loopback})
	require.NoError(t, err)
	_, err = mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: rv.srv.URL, Events: []string{"*"}})
	require.NoError(t, err)
	const total = 1000
	for i := range total {
		require.NoError(t, mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: map[string]int{"n": i}}))
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i, s := range []*sqlstore.Store{a, b} {
		d, err := webhook.NewDispatcher(s, nil, webhook.DispatcherConfig{Owner: fmt.Sprint("d", i), Guard: loopback, Workers: 16, PollInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		wg.Go(func() { _ = d.Run(ctx) })
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == total {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("two dispatchers on PostgreSQL: %d distinct events delivered of %d, %d duplicate deliveries, %d concurrent duplicates", len(seen), total, dups, concurrent)
	assert.Equal(t, total, len(seen), "every event delivered at least once")
	assert.Zero(t, concurrent, "never delivered twice at the same time")
}

// TestMisbehavingReceiversDoNotStallOthers runs the dispatcher against
// five endpoints at once — one that hangs, one that resets connections,
// one that answers slowly, one that streams a huge body, and a healthy
// one — and checks that the healthy, slow and huge ones get every event
// while the others fail attempt by attempt.
func TestMisbehavingReceiversDoNotStallOthers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	type counter struct {
		mu  sync.Mutex
		ids map[string]bool
	}
	count := func(c *counter, r *http.Request) {
		c.mu.Lock()
		c.ids[r.Header.Get("webhook-id")] = true
		c.mu.Unlock()
	}
	got := map[string]*counter{}
	handlers := map[string]http.HandlerFunc{
		"hang": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		},
		"reset": func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = conn.Close()
			}
		},
		"slow": func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(150 * time.Millisecond)
			count(got["slow"], r)
		},
		"huge": func(w http.ResponseWriter, r *http.Request) {
			count(got["huge"], r)
			chunk := make([]byte, 64<<10)
			for i := 0; i < 1024; i++ { // up to 64 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		},
		"good": func(w http.ResponseWriter, r *http.Request) { count(got["good"], r) },
	}
	st := memory.New()
	mgr, err := webhook.New(st, webhook.Config{Events: events, Guard: loopback})
	require.NoError(t, err)
	for name, h := range handlers {
		got[name] = &counter{ids: map[string]bool{}}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		_, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: srv.URL + "/" + name, Events: []string{"booking.*"}})
		require.NoError(t, err)
	}
	t.Cleanup(func() { close(release) })
	const n = 20
	for i := range n {
		require.NoError(t, mgr.Enqueue(t.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: map[string]int{"i": i}}))
	}
	d, err := webhook.NewDispatcher(st, mgr, webhook.DispatcherConfig{Guard: loopback, Workers: 8, Timeout: 500 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Schedule: []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond}, Jitter: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	delivered := func(name string) int {
		c := got[name]
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.ids)
	}
	require.Eventually(t, func() bool { return delivered("good") == n && delivered("slow") == n && delivered("huge") == n },
		30*time.Second, 20*time.Millisecond, "good %d, slow %d, huge %d of %d", delivered("good"), delivered("slow"), delivered("huge"), n)
	cancel()
	require.NoError(t, <-done)

	subs, err := st.ListSubscriptions(t.Context(), "org")
	require.NoError(t, err)
	for _, s := range subs {
		name := s.URL[strings.LastIndex(s.URL, "/")+1:]
		ds, err := st.ListDeliveries(t.Context(), s.ID, storage.Page{})
		require.NoError(t, err)
		require.Len(t, ds, n, name)
		for _, dl := range ds {
			switch name {
			case "good", "slow", "huge":
				assert.Equal(t, storage.DeliveryDelivered, dl.Status, "%s: %s", name, dl.LastError)
			case "hang", "reset":
				assert.NotEqual(t, storage.DeliveryDelivered, dl.Status, name)
				if dl.Attempts > 0 {
					assert.NotEmpty(t, dl.LastError, "%s: a failed attempt says why", name)
				}
			}
		}
	}
}

// TestResponseBodiesAreRecordedAsText: whatever bytes a receiver answers
// with (NULs, bytes that are not UTF-8, a character cut at the 4 KiB the
// attempt keeps), the attempt is recorded and the delivery ends, on
// PostgreSQL too, where such text used to fail the record: the delivery
// then stayed leased and was sent again every time its lease ran out.
func TestResponseBodiesAreRecordedAsText(t *testing.T) {
	t.Parallel()
	pg := postgresStore(t, "whtext_")
	body := "ok!\x00\xff" + strings.Repeat("é", 3000) // 6,005 bytes: the cut at 4,096 splits an é
	for name, store := range map[string]storage.Store{"memory": memory.New(), "postgres": pg} {
		t.Run(name, func(t *testing.T) {
			rv := newReceiver(t, func(_ int, w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = io.WriteString(w, body)
			})
			f := newFixture(t, store, rv.srv.URL+"/hooks", loopback)
			f.enqueue(t, "booking.created")
			n, err := f.dispatcher(t, webhook.DispatcherConfig{}).RunOnce(t.Context())
			require.NoError(t, err)
			require.Equal(t, 1, n)
			ds := f.deliveries(t)
			require.Len(t, ds, 1)
			assert.Equal(t, storage.DeliveryDelivered, ds[0].Status, "the delivery ended")
			atts, err := f.store.ListAttempts(t.Context(), ds[0].ID)
			require.NoError(t, err)
			require.Len(t, atts, 1)
			got := atts[0].ResponseBody
			assert.True(t, storage.ValidText(got), "recorded as text a store holds")
			assert.True(t, strings.HasPrefix(got, "ok!\ufffd\ufffdéé"), "%.20q", got)
			assert.True(t, strings.HasSuffix(got, "é\ufffd"), "the cut character replaced: %q", got[len(got)-8:])
			assert.Equal(t, 1, rv.count())
		})
	}
}

// TestSendTest: a test event reaches the one subscription it is sent to,
// whatever its patterns (it subscribes to none that match webhook.test),
// signed with its secret and listed among its deliveries; the
// organisation's other subscriptions, "*" included, get nothing. A
// disabled subscription is a 409, an unknown one ErrNotFound.
func TestSendTest(t *testing.T) {
	t.Parallel()
	rv := newReceiver(t, func(int, http.ResponseWriter) {})
	other := newReceiver(t, func(int, http.ResponseWriter) {})
	f := newFixture(t, memory.New(), rv.srv.URL+"/hooks", loopback)
	all, err := f.mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: other.srv.URL, Events: []string{"*"}})
	require.NoError(t, err)

	id, err := f.mgr.SendTest(t.Context(), f.sub.ID)
	require.NoError(t, err)
	n, err := f.dispatcher(t, webhook.DispatcherConfig{}).RunOnce(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n, "one delivery")
	require.Equal(t, 1, rv.count())
	assert.Zero(t, other.count(), "the other subscription, though it takes every event")
	h, body := rv.got[0], rv.bodies[0]
	require.NoError(t, webhook.Verify(h, []byte(body), f.clk.Now(), 0, f.sub.Secret))
	assert.Equal(t, id, h.Get("webhook-id"))
	var p struct {
		Type string
		Data map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	assert.Equal(t, webhook.EventTest, p.Type)
	assert.Equal(t, f.sub.ID, p.Data["subscription_id"])
	assert.Equal(t, f.sub.URL, p.Data["url"])
	ds := f.deliveries(t)
	require.Len(t, ds, 1)
	assert.Equal(t, storage.DeliveryDelivered, ds[0].Status)
	assert.Equal(t, id, ds[0].EventID)
	dsAll, err := f.store.ListDeliveries(t.Context(), all.ID, storage.Page{})
	require.NoError(t, err)
	assert.Empty(t, dsAll)

	_, err = f.mgr.SendTest(t.Context(), storage.NewID())
	assert.ErrorIs(t, err, storage.ErrNotFound)
	sub, err := f.store.GetSubscription(t.Context(), f.sub.ID)
	require.NoError(t, err)
	sub.Enabled, sub.DisabledReason = false, "gone"
	require.NoError(t, f.store.UpdateSubscription(t.Context(), sub))
	_, err = f.mgr.SendTest(t.Context(), f.sub.ID)
	var ae *apierror.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusConflict, ae.Status)
	assert.Len(t, f.deliveries(t), 1, "nothing enqueued for a disabled subscription")
}

// TestUpdateSubscription: a subscription the dispatcher disabled (410
// Gone) is enabled again, its failure record cleared, and receives the
// events after; its events and URL change, checked as at creation; its
// owner disables it, and it then gets nothing.
func TestUpdateSubscription(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusGone)
	rv := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(int(status.Load())) })
	f := newFixture(t, memory.New(), rv.srv.URL, loopback)
	d := f.dispatcher(t, webhook.DispatcherConfig{Schedule: []time.Duration{0, time.Hour}})
	f.enqueue(t, "booking.created")
	_, _ = d.RunOnce(t.Context())
	sub, err := f.store.GetSubscription(t.Context(), f.sub.ID)
	require.NoError(t, err)
	require.False(t, sub.Enabled, "410 disables")

	status.Store(http.StatusOK)
	enable, disable := true, false
	sub, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{Enabled: &enable})
	require.NoError(t, err)
	assert.True(t, sub.Enabled)
	assert.Empty(t, sub.DisabledReason)
	assert.True(t, sub.FailingSince.IsZero(), "the failure record is cleared")
	f.enqueue(t, "booking.updated")
	n, err := d.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n, "delivered once enabled again")

	// Events and URL change, checked as at creation; nothing of a refused change is kept.
	bad := "http://169.254.169.254/latest"
	_, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{URL: &bad, Events: []string{"booking.exploded"}})
	var fields []string
	for _, fi := range apierror.From(err).Details.(apierror.FieldDetails).Errors {
		fields = append(fields, fi.Field)
	}
	assert.Equal(t, []string{"url", "events"}, fields)
	sub, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{Events: []string{"payment.completed", "payment.completed"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"payment.completed"}, sub.Events)
	assert.Equal(t, rv.srv.URL, sub.URL, "the URL, not given, is kept")
	before := len(f.deliveries(t))
	f.enqueue(t, "booking.created")
	assert.Len(t, f.deliveries(t), before, "no longer subscribed")
	f.enqueue(t, "payment.completed")
	assert.Len(t, f.deliveries(t), before+1)

	// Disabled by its owner: nothing is queued for it, no test event either.
	sub, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{Enabled: &disable})
	require.NoError(t, err)
	assert.False(t, sub.Enabled)
	assert.Equal(t, webhook.DisabledByOwner, sub.DisabledReason)
	f.enqueue(t, "payment.completed")
	assert.Len(t, f.deliveries(t), before+1)
	_, err = f.mgr.SendTest(t.Context(), f.sub.ID)
	assert.Equal(t, http.StatusConflict, apierror.From(err).Status)

	_, err = f.mgr.Update(t.Context(), storage.NewID(), webhook.SubscriptionUpdate{Enabled: &enable})
	assert.ErrorIs(t, err, storage.ErrNotFound)

	// Enabling a failing subscription that is enabled does not put off
	// its disabling: its failure record stays.
	_, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{Enabled: &enable})
	require.NoError(t, err)
	status.Store(http.StatusInternalServerError)
	f.enqueue(t, "payment.completed")
	_, _ = d.RunOnce(t.Context())
	sub, err = f.store.GetSubscription(t.Context(), f.sub.ID)
	require.NoError(t, err)
	require.False(t, sub.FailingSince.IsZero(), "failing")
	sub, err = f.mgr.Update(t.Context(), f.sub.ID, webhook.SubscriptionUpdate{Enabled: &enable})
	require.NoError(t, err)
	assert.False(t, sub.FailingSince.IsZero(), "the failure record is kept")
}
