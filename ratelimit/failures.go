package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// AuthFailures is the default policy of a [FailureBudget]: 100 refused
// credentials a minute from one client.
var AuthFailures = MustPolicy("auth-failures", "100/m")

// FailureBudgetConfig holds the optional settings of [NewFailureBudget].
type FailureBudgetConfig struct {
	// Policy bounds the failures counted against one key. Default:
	// AuthFailures.
	Policy *Policy
	// Key names the counter a request's failures count against. Default:
	// "authfail:" and the client's [AddressKey].
	Key func(r *http.Request) string
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// when the default Key finds the client's address. Default: none.
	TrustedProxies []netip.Prefix
	// ErrorHandler writes the 429 of a client that has spent its budget
	// (nothing else: when the limiter fails, requests go on). Default:
	// apierror.Writer.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives limiter failures. Default: silent.
	Logger *slog.Logger
}

// FailureBudget bounds the failed attempts of a client — credentials sent
// and refused — where only failures are counted. Its Handler answers 429
// before the handler it wraps runs, once a client has spent its budget;
// Spend counts one failure. Put Handler outside [gatehouse.Chain] and call
// Spend from ChainConfig.OnRefused: an API key with a valid checksum is not
// secret and costs a storage lookup when unknown, so without a bound a
// client sending fresh ones turns every request into a query.
//
// With the [Memory] limiter the budget is per instance (it bounds the
// lookups each instance can be made to run) and its check costs about
// what one rate-limit decision does; with [Redis] it is shared by the
// instances, at one more round trip per request. Requests are never
// counted, only failures, so a client that authenticates spends nothing.
// It is safe for concurrent use.
type FailureBudget struct {
	limiter Limiter
	policy  Policy
	key     func(r *http.Request) string
	onError func(w http.ResponseWriter, r *http.Request, err error)
	log     *slog.Logger
}

// NewFailureBudget returns a FailureBudget counting in l.
func NewFailureBudget(l Limiter, cfg FailureBudgetConfig) (*FailureBudget, error) {
	if l == nil {
		return nil, errors.New("ratelimit: NewFailureBudget needs a limiter")
	}
	b := &FailureBudget{limiter: l, policy: AuthFailures, key: cfg.Key, onError: cfg.ErrorHandler, log: cfg.Logger}
	if cfg.Policy != nil {
		if !cfg.Policy.usable() {
			return nil, fmt.Errorf("ratelimit: a failure budget's policy needs 1 to %d windows", MaxWindows)
		}
		b.policy = *cfg.Policy
	}
	if b.key == nil {
		trusted := cfg.TrustedProxies
		b.key = func(r *http.Request) string { return "authfail:" + AddressKey(ClientIP(r, trusted)) }
	}
	if b.onError == nil {
		b.onError = apierror.Writer{Logger: cfg.Logger}.Write
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

// Handler answers 429 RATE_LIMITED (Retry-After, and the spent window in
// the details) to a client that has spent its budget, and passes every
// other request to next. Checking costs nothing from the budget. When the
// limiter fails, the request goes on (a [Failover] decides otherwise for
// a Redis limiter that is down): a failure budget must not make an outage
// of the limiter an outage of the API.
func (b *FailureBudget) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := b.limiter.Allow(r.Context(), b.key(r), b.policy, 0)
		if err != nil {
			b.log.Error("failure budget: limiter failed; letting the request through", "err", err)
		} else if spent, ok := res.Exhausted(); ok {
			b.onError(w, r, Refusal(spent, spent.Reset.Sub(res.At)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Spend counts one failure of r's client. It counts even when the client
// has gone: hanging up at once must not make a guess free.
func (b *FailureBudget) Spend(r *http.Request) {
	if _, err := b.limiter.Allow(context.WithoutCancel(r.Context()), b.key(r), b.policy, 1); err != nil {
		b.log.Error("failure budget: limiter failed; the failure was not counted", "err", err)
	}
}
