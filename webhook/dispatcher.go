package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// DefaultSchedule is the delay before each attempt: at once, then 5 s,
// 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (Svix's schedule).
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DispatcherConfig holds the settings of a [Dispatcher]; the zero value
// is usable.
type DispatcherConfig struct {
	// Owner names this dispatcher in leases. Default: host, pid and a
	// random suffix.
	Owner string
	// Workers bounds concurrent deliveries. Default: 8.
	Workers int
	// PerEndpoint bounds the concurrent deliveries to one subscription,
	// so that an endpoint that is slow or times out, with a backlog, holds
	// at most that many workers and other endpoints' deliveries go on
	// beside it. The bound is per dispatcher: N dispatchers may have N
	// times as many in flight. Default: half of Workers (at least 1);
	// where one endpoint takes most of the traffic, raise it to Workers.
	PerEndpoint int
	// Timeout bounds one delivery attempt. Default: 15 s.
	Timeout time.Duration
	// Lease is how long a claimed delivery is reserved for this
	// dispatcher; after it another may claim it. It must exceed Timeout.
	// Default: Timeout + 30 s.
	Lease time.Duration
	// PollInterval is how often the outbox is polled when idle. Default: 1 s.
	PollInterval time.Duration
	// Schedule is the delay before each attempt; its length is the number
	// of attempts. Default: DefaultSchedule.
	Schedule []time.Duration
	// Jitter spreads each retry by ±this fraction. Default: 0.2; negative
	// for none.
	Jitter float64
	// DisableAfter disables an endpoint that has failed without a success
	// for this long. Default: 5 days.
	DisableAfter time.Duration
	// Guard decides which addresses deliveries may reach (SSRF).
	Guard Guard
	// Client sends deliveries. Default: Guard.Client(Timeout). A custom
	// client bypasses the guard unless it uses it.
	Client *http.Client
	// OnAttempt is called after every attempt (metrics). Default: nothing.
	OnAttempt func(storage.Attempt, storage.DeliveryStatus)
	// Logger receives one line per attempt. Default: silent.
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Dispatcher sends the outbox's deliveries: at least once, in no
// particular order, at most PerEndpoint at a time to one endpoint (so
// that a slow one cannot take every worker). Several dispatchers (in
// several processes) may share
// one store; leases keep them from sending one delivery at once, and a
// dispatcher that dies loses nothing: its leases expire and another
// dispatcher claims the deliveries.
type Dispatcher struct {
	store Store
	mgr   *Manager
	cfg   DispatcherConfig
	log   *slog.Logger
	sem   chan struct{}
	freed chan struct{} // a worker finished
	wg    sync.WaitGroup
	// disabling serialises disable, so concurrent failures of one endpoint
	// disable it (and announce it) once.
	disabling sync.Mutex

	mu       sync.Mutex
	inflight map[string]int // subscription id → its deliveries in flight here
}

// NewDispatcher returns a dispatcher over store; mgr (optional) emits the
// webhook.disabled event when an endpoint is disabled.
func NewDispatcher(store Store, mgr *Manager, cfg DispatcherConfig) (*Dispatcher, error) {
	if store == nil {
		return nil, errors.New("webhook: NewDispatcher needs a store")
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = max(1, cfg.Workers/2)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = cfg.Timeout + 30*time.Second
	}
	if cfg.Lease <= cfg.Timeout {
		return nil, errors.New("webhook: Lease must exceed Timeout")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.2
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 5 * 24 * time.Hour
	}
	if cfg.Client == nil {
		cfg.Client = cfg.Guard.Client(cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dispatcher{store: store, mgr: mgr, cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.Workers), freed: make(chan struct{}, 1),
		inflight: map[string]int{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Run delivers until ctx is done, then waits for the deliveries in flight
// to finish (each bounded by Timeout) and returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.wg.Wait()
	for {
		_, claimed, err := d.claimAndStart(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("webhook claim failed", "err", err)
		}
		if claimed > 0 && err == nil {
			continue // there may be more due (also when all were given back)
		}
		wait := d.cfg.PollInterval
		if len(d.sem) == cap(d.sem) {
			wait = time.Hour // busy: wake when a worker frees up
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.freed:
		case <-time.After(wait):
		}
	}
}

// RunOnce claims what is due now (up to the free workers, and PerEndpoint
// to one endpoint) and delivers it, returning how many it delivered (or
// tried to) when those deliveries are done. For tests and cron-style use.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	started, _, err := d.claimAndStart(ctx)
	d.wg.Wait()
	return started, err
}

// claimAndStart claims due deliveries and starts those within the
// per-endpoint bound; it returns how many it started and how many it
// claimed (the rest were given back).
func (d *Dispatcher) claimAndStart(ctx context.Context) (started, claimed int, err error) {
	free := cap(d.sem) - len(d.sem)
	if free == 0 || ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	ds, err := d.store.ClaimDeliveries(ctx, d.cfg.Owner, d.cfg.Now(), d.cfg.Lease, free, d.atLimit())
	if err != nil {
		return 0, 0, err
	}
	for _, dl := range ds {
		if !d.take(dl.SubscriptionID) {
			// The claim brought more of one endpoint's backlog than it may
			// have in flight: the rest goes back, unattempted, and the
			// next claims pass over that endpoint until a delivery ends.
			if err := d.store.ReleaseDelivery(context.WithoutCancel(ctx), dl.ID, dl.LeaseID); err != nil {
				d.log.Warn("webhook delivery: giving back a claimed delivery failed; it waits for its lease to expire",
					"delivery_id", dl.ID, "err", err)
			}
			continue
		}
		started++
		d.sem <- struct{}{}
		d.wg.Add(1)
		go func() {
			defer func() {
				d.done(dl.SubscriptionID)
				<-d.sem
				select {
				case d.freed <- struct{}{}:
				default:
				}
				d.wg.Done()
			}()
			// In-flight deliveries finish even when Run is stopping.
			d.deliver(context.WithoutCancel(ctx), dl)
		}()
	}
	return started, len(ds), nil
}

// take counts a delivery to sub in flight, unless sub has PerEndpoint
// in flight already.
func (d *Dispatcher) take(sub string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[sub] >= d.cfg.PerEndpoint {
		return false
	}
	d.inflight[sub]++
	return true
}

// done ends a delivery to sub.
func (d *Dispatcher) done(sub string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[sub]--; d.inflight[sub] <= 0 {
		delete(d.inflight, sub)
	}
}

// atLimit lists the subscriptions with PerEndpoint deliveries in flight,
// for the claim to pass over.
func (d *Dispatcher) atLimit() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var full []string
	for sub, n := range d.inflight {
		if n >= d.cfg.PerEndpoint {
			full = append(full, sub)
		}
	}
	return full
}

// maxRecorded is how much of a response body an attempt records.
const maxRecorded = 4 << 10

// recordable is what an attempt keeps of a receiver's response body: its
// bytes that are not UTF-8 (a binary body, a character cut at
// maxRecorded) and its NULs as U+FFFD, so that every store can hold it.
// (PostgreSQL refused the attempt otherwise, the delivery stayed leased,
// and it was sent again each time the lease ran out.)
func recordable(b []byte) string {
	return strings.ReplaceAll(strings.ToValidUTF8(string(b), "\uFFFD"), "\x00", "\uFFFD")
}

func (d *Dispatcher) deliver(ctx context.Context, dl *storage.Delivery) {
	now := d.cfg.Now()
	sub, err := d.store.GetSubscription(ctx, dl.SubscriptionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !sub.Enabled) {
		d.finish(ctx, dl, storage.Attempt{At: now, Error: "the subscription is deleted or disabled"}, storage.DeliveryFailed, time.Time{})
		return
	}
	if err != nil {
		d.log.Error("webhook delivery: loading the subscription failed", "delivery_id", dl.ID, "err", err)
		_ = d.store.ReleaseDelivery(ctx, dl.ID, dl.LeaseID) // try again soon
		return
	}
	keys, err := signingKeys(sub, now)
	if err != nil {
		d.finish(ctx, dl, storage.Attempt{At: now, Error: "the subscription's secret is unusable: " + err.Error()}, storage.DeliveryFailed, time.Time{})
		return
	}

	attempt := storage.Attempt{At: now}
	status, retryAfter, body, sendErr := d.send(ctx, sub.URL, dl, keys, now)
	attempt.Duration = d.cfg.Now().Sub(now)
	attempt.StatusCode, attempt.ResponseBody = status, body
	if sendErr != nil {
		attempt.Error = sendErr.Error()
	} else if status < 200 || status > 299 {
		attempt.Error = "status " + strconv.Itoa(status)
	}

	switch {
	case sendErr == nil && status >= 200 && status <= 299:
		d.finish(ctx, dl, attempt, storage.DeliveryDelivered, time.Time{})
		d.healthy(ctx, sub)
	case sendErr == nil && status == http.StatusGone:
		d.finish(ctx, dl, attempt, storage.DeliveryFailed, time.Time{})
		d.disable(ctx, sub, "the endpoint answered 410 Gone")
	default:
		n := dl.Attempts + 1 // attempts made, this one included
		if n >= len(d.cfg.Schedule) {
			d.finish(ctx, dl, attempt, storage.DeliveryFailed, time.Time{})
		} else {
			d.finish(ctx, dl, attempt, storage.DeliveryPending, now.Add(d.delay(n, retryAfter)))
		}
		d.failing(ctx, sub, now)
	}
}

func signingKeys(sub *storage.Subscription, now time.Time) ([][]byte, error) {
	k, err := ParseSecret(sub.Secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{k}
	if sub.PreviousSecret != "" && now.Before(sub.PreviousSecretExpiresAt) {
		if old, err := ParseSecret(sub.PreviousSecret); err == nil {
			keys = append(keys, old)
		}
	}
	return keys, nil
}

// delay is the wait before attempt n+1: the schedule's, with jitter, or
// the receiver's Retry-After when that is longer (up to the schedule's
// longest delay).
func (d *Dispatcher) delay(n int, retryAfter time.Duration) time.Duration {
	base := d.cfg.Schedule[n]
	if d.cfg.Jitter > 0 {
		base += time.Duration((mrand.Float64()*2 - 1) * d.cfg.Jitter * float64(base))
	}
	if retryAfter > base {
		base = min(retryAfter, slicesMax(d.cfg.Schedule))
	}
	return base
}

func slicesMax(s []time.Duration) time.Duration {
	m := s[0]
	for _, x := range s[1:] {
		m = max(m, x)
	}
	return m
}

func (d *Dispatcher) send(ctx context.Context, url string, dl *storage.Delivery, keys [][]byte, now time.Time) (int, time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(dl.Payload))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Webhooks/1")
	req.Header.Set(HeaderID, dl.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(dl.EventID, now, dl.Payload, keys...))
	res, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxRecorded))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // drain a little for reuse, never a huge body
	var ra time.Duration
	if v := res.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			ra = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			ra = t.Sub(now)
		}
	}
	return res.StatusCode, ra, recordable(b), nil
}

func (d *Dispatcher) finish(ctx context.Context, dl *storage.Delivery, a storage.Attempt, st storage.DeliveryStatus, next time.Time) {
	d.log.Info("webhook attempt", "delivery_id", dl.ID, "event_id", dl.EventID, "subscription_id", dl.SubscriptionID,
		"attempt", dl.Attempts+1, "status_code", a.StatusCode, "duration", a.Duration, "outcome", string(st), "error", a.Error)
	err := d.store.CompleteDelivery(ctx, storage.DeliveryResult{DeliveryID: dl.ID, LeaseID: dl.LeaseID, Attempt: a, Status: st, NextAttemptAt: next})
	if errors.Is(err, storage.ErrLeaseLost) {
		d.log.Warn("webhook delivery finished after its lease was taken over; result dropped", "delivery_id", dl.ID)
		return
	}
	if err != nil {
		d.log.Error("webhook delivery: recording the attempt failed", "delivery_id", dl.ID, "err", err)
	}
	if d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(a, st)
	}
}

// healthy clears the endpoint's failure mark after a success. sub is as
// read before the delivery: the change is made to the subscription as it
// is now (changeSubscription), so a secret rotated or a disabling made
// meanwhile stands.
func (d *Dispatcher) healthy(ctx context.Context, sub *storage.Subscription) {
	if sub.FailingSince.IsZero() {
		return
	}
	if _, err := changeSubscription(ctx, d.store, sub.ID, func(s *storage.Subscription) bool {
		if s.FailingSince.IsZero() {
			return false
		}
		s.FailingSince, s.UpdatedAt = time.Time{}, d.cfg.Now().UTC()
		return true
	}); err != nil && !errors.Is(err, storage.ErrNotFound) {
		d.log.Error("webhook: clearing the failure mark failed", "subscription_id", sub.ID, "err", err)
	}
}

// failing marks the endpoint failing after a failure, or disables it
// when it has been failing for DisableAfter.
func (d *Dispatcher) failing(ctx context.Context, sub *storage.Subscription, now time.Time) {
	cur, err := changeSubscription(ctx, d.store, sub.ID, func(s *storage.Subscription) bool {
		if !s.FailingSince.IsZero() {
			return false
		}
		s.FailingSince, s.UpdatedAt = now.UTC(), now.UTC()
		return true
	})
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			d.log.Error("webhook: marking the endpoint failing failed", "subscription_id", sub.ID, "err", err)
		}
		return
	}
	if cur.Enabled && now.Sub(cur.FailingSince) >= d.cfg.DisableAfter {
		d.disable(ctx, cur, "the endpoint has failed without a success since "+cur.FailingSince.UTC().Format(time.RFC3339))
	}
}

func (d *Dispatcher) disable(ctx context.Context, sub *storage.Subscription, reason string) {
	d.disabling.Lock()
	defer d.disabling.Unlock()
	changed, id := false, sub.ID
	sub, err := changeSubscription(ctx, d.store, id, func(s *storage.Subscription) bool {
		if !s.Enabled {
			return false // already disabled
		}
		s.Enabled, s.DisabledReason, s.UpdatedAt = false, reason, d.cfg.Now().UTC()
		changed = true
		return true
	})
	if err != nil || !changed {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			d.log.Error("webhook: disabling the endpoint failed", "subscription_id", id, "err", err)
		}
		return
	}
	d.log.Warn("webhook endpoint disabled", "subscription_id", sub.ID, "reason", reason)
	if d.mgr != nil {
		err := d.mgr.Enqueue(ctx, Event{OrganisationID: sub.OrganisationID, Environment: sub.Environment, Type: EventDisabled,
			Data: map[string]string{"subscription_id": sub.ID, "url": sub.URL, "reason": reason}})
		if err != nil {
			d.log.Error("webhook: emitting webhook.disabled failed", "err", err)
		}
	}
}
