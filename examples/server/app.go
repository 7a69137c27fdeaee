package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

// appEvents is the event catalog of the seed's API, each type with what
// it means, for the webhook manager and GET /v1/webhooks/event-types.
var appEvents = []eventType{
	{Type: "booking.created", Description: "A booking was made (the booking)"},
	{Type: "booking.updated", Description: "A booking was changed (the booking)"},
	{Type: "booking.cancelled", Description: "A booking was cancelled (the booking)"},
	{Type: "payment.completed", Description: "A payment was taken (the payment)"},
	{Type: "payment.refunded", Description: "A payment was refunded (the payment)"},
	{Type: "customer.created", Description: "A customer was added (the customer)"},
	{Type: "customer.updated", Description: "A customer's profile was changed (the customer)"},
	{Type: "staff.schedule_changed", Description: "A staff member's schedule was replaced (the staff member)"},
}

// eventType is one entry of GET /v1/webhooks/event-types.
type eventType struct {
	Type        string `json:"type"`
	Description string `json:"description"`
	// Subscribable says whether a subscription's events may name it
	// (webhook.test comes only when asked for).
	Subscribable bool `json:"subscribable"`
}

// eventTypes are the names of appEvents: webhook.Config.Events.
func eventTypes() []string {
	names := make([]string, len(appEvents))
	for i, e := range appEvents {
		names[i] = e.Type
	}
	return names
}

func (a *app) listEventTypes(w http.ResponseWriter, r *http.Request) {
	// The webhook package's own events after the application's.
	out := make([]eventType, 0, len(appEvents)+2)
	for _, e := range appEvents {
		e.Subscribable = true
		out = append(out, e)
	}
	out = append(out,
		eventType{Type: webhook.EventDisabled, Subscribable: true,
			Description: "One of the organisation's subscriptions was disabled: its endpoint answered 410 Gone, or failed for 5 days (subscription_id, url, reason)"},
		eventType{Type: webhook.EventTest,
			Description: "Sent on request, to one subscription whatever its events, to check its endpoint: POST /v1/webhooks/{id}/test (subscription_id, url, message)"})
	writeJSON(w, http.StatusOK, out)
}

// catalog is the seed's nine scopes plus webhooks:read and webhooks:write.
func catalog() *scope.Catalog {
	c, err := scope.DefaultCatalog().With(
		scope.Scope{Name: "webhooks:read", Description: "View webhook subscriptions and their deliveries"},
		scope.Scope{Name: "webhooks:write", Description: "Create, delete and redeliver webhooks", Implies: []string{"webhooks:read"}},
	)
	if err != nil {
		panic(err) // constant input
	}
	return c
}

// app holds every piece of the server.
type app struct {
	store    *sqlstore.Store
	log      *slog.Logger
	catalog  *scope.Catalog
	keys     *apikey.Manager
	provider *oauth.Provider
	hooks    *webhook.Manager
	dispatch *webhook.Dispatcher
	records  *records
	limiter  ratelimit.Limiter
	// rateStatus serves GET /v1/rate-limit (handler() sets it).
	rateStatus http.Handler
	cors       cors
	decoder    apierror.Decoder
	metrics    *metrics
	proxies    []netip.Prefix // trusted reverse proxies

	issuer   string
	jwt      bool          // access tokens are JWTs; the JWKS is served
	cacheTTL time.Duration // of validated access tokens (-cache-ttl)

	plans sync.Map // organisation id → plan name
}

type appConfig struct {
	Issuer       string
	Secret       []byte
	Limiter      ratelimit.Limiter
	WebhookAllow webhook.Guard
	Logger       *slog.Logger
	Insecure     bool
	// CORS is the browser origins allowed to call /v1 and the token and
	// revocation endpoints; the zero value allows none.
	CORS cors
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client: for the per-address limits (failed sign-ins, the token
	// endpoint), the access log and API keys' last-used address. Empty:
	// the connection's address, and X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// JWTKeys, when set, makes access tokens JWTs signed by these keys.
	JWTKeys *oauth.KeySet
	// PasswordParams are the argon2id parameters of passwords; the zero
	// value is oauth.DefaultPasswordParams (the fuzz targets use cheap
	// ones).
	PasswordParams oauth.PasswordParams
	// RefreshReuseGrace is oauth.Config.RefreshReuseGrace (-refresh-grace).
	RefreshReuseGrace time.Duration
	// AllowMissingState is oauth.Config.AllowMissingState
	// (-allow-missing-state).
	AllowMissingState bool
	// CacheTTL is the API-key and access-token caches' TTL (-cache-ttl);
	// zero is their default, 5 s.
	CacheTTL time.Duration
}

func newApp(ctx context.Context, s *sqlstore.Store, cfg appConfig) (*app, error) {
	a := &app{store: s, log: cfg.Logger, issuer: cfg.Issuer, jwt: cfg.JWTKeys != nil, catalog: catalog(), limiter: cfg.Limiter, cors: cfg.CORS, decoder: apierror.Decoder{MaxBytes: 64 << 10}, metrics: newMetrics(s),
		proxies: cfg.TrustedProxies, cacheTTL: cfg.CacheTTL}
	var err error
	// Every instance on the database hears each revocation at once
	// (PostgreSQL's LISTEN/NOTIFY; on SQLite, the admin command's too,
	// through a table), instead of within the caches' TTL.
	inv := s.Invalidator()
	a.keys, err = apikey.New(s, apikey.Config{Catalog: a.catalog, Logger: cfg.Logger, ClientIP: a.clientIP, Invalidator: inv, CacheTTL: cfg.CacheTTL})
	if err != nil {
		return nil, err
	}
	a.provider, err = oauth.New(s, oauth.Config{Issuer: cfg.Issuer, Secret: cfg.Secret, Catalog: a.catalog, Logger: cfg.Logger, InsecureCookies: cfg.Insecure,
		ClientIP: a.clientIP, LoginLimiter: cfg.Limiter, JWTKeys: cfg.JWTKeys, Invalidator: inv, PasswordParams: cfg.PasswordParams, RefreshReuseGrace: cfg.RefreshReuseGrace, AllowMissingState: cfg.AllowMissingState}) // with -redis, failed sign-ins are counted once for all instances
	if err != nil {
		return nil, err
	}
	a.hooks, err = webhook.New(s, webhook.Config{Events: eventTypes(), Guard: cfg.WebhookAllow, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	a.dispatch, err = webhook.NewDispatcher(s, a.hooks, webhook.DispatcherConfig{Guard: cfg.WebhookAllow, Logger: cfg.Logger, OnAttempt: a.metrics.delivery})
	if err != nil {
		return nil, err
	}
	a.records, err = newRecords(ctx, s, a.hooks)
	return a, err
}

// clientIP is the address a request came from: the connection's, or the
// client a trusted proxy names.
func (a *app) clientIP(r *http.Request) string { return ratelimit.ClientIP(r, a.proxies) }

func (a *app) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	return a.decoder.Decode(w, r, dst)
}

// planOf returns an organisation's rate-limit plan, cached for a minute.
func (a *app) planOf(ctx context.Context, org string) string {
	type cached struct {
		plan string
		at   time.Time
	}
	if v, ok := a.plans.Load(org); ok && time.Since(v.(cached).at) < time.Minute {
		return v.(cached).plan
	}
	o, err := a.store.GetOrganisation(ctx, org)
	if err != nil {
		return ""
	}
	a.plans.Store(org, cached{o.Plan, time.Now()})
	return o.Plan
}

// handler builds the whole HTTP surface.
// privateResponses marks every /v1 response as TidyHQ's API does,
// Cache-Control: max-age=0, private, must-revalidate: each is one
// caller's data, which no shared cache may keep and no browser may reuse
// without asking again. A handler may set its own (the error envelope
// sets no-store).
func privateResponses(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0, private, must-revalidate")
		next.ServeHTTP(w, r)
	})
}

func (a *app) handler() (http.Handler, error) {
	// Refused credentials on /v1 spend a budget per client address, on
	// each instance (it bounds the storage lookups each instance can be
	// made to run): an unknown API key with a valid checksum costs one.
	authFails, err := ratelimit.NewFailureBudget(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.FailureBudgetConfig{
		TrustedProxies: a.proxies, ErrorHandler: a.limitError, Logger: a.log})
	if err != nil {
		return nil, err
	}
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{Logger: a.log, ErrorHandler: a.authError,
		OnRefused: func(r *http.Request, _ error) { authFails.Spend(r) }}, a.keys, a.provider.Authenticator(oauth.ResourceConfig{AllowQueryToken: true, CacheTTL: a.cacheTTL}))
	if err != nil {
		return nil, err
	}
	apiLimits, err := ratelimit.New(a.limiter, ratelimit.Config{Logger: a.log, IETFHeaders: true, ErrorHandler: a.limitError, TrustedProxies: a.proxies,
		Resolve: func(r *http.Request, p *gatehouse.Principal) string {
			if p.RateLimitPolicy != "" {
				return p.RateLimitPolicy // the key's own limit
			}
			return a.planOf(r.Context(), p.Organisation)
		}})
	if err != nil {
		return nil, err
	}
	tokenPolicy := ratelimit.MustPolicy("token-endpoint", "60/m,600/h")
	tokenLimits, err := ratelimit.New(a.limiter, ratelimit.Config{Logger: a.log, Anonymous: &tokenPolicy, ErrorHandler: a.limitError,
		Key: func(r *http.Request, _ *gatehouse.Principal) string {
			return "token-ip:" + ratelimit.AddressKey(a.clientIP(r))
		}})
	if err != nil {
		return nil, err
	}

	a.rateStatus = apiLimits.StatusHandler()
	ops := a.operations()
	api := a.apiMux(ops)
	limited := apiLimits.Handler(api)
	v1 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == pathRateLimit {
			api.ServeHTTP(w, r) // the budget, reported without spending any of it
			return
		}
		limited.ServeHTTP(w, r)
	})
	doc := a.openAPI(a.issuer, ops)

	var methods []string
	for _, op := range ops {
		if !slices.Contains(methods, op.Method) {
			methods = append(methods, op.Method)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", a.cors.handler(methods, privateResponses(apierror.Negotiate(authFails.Handler(chain.Handler(v1))))))
	mux.Handle("/oauth/token", a.cors.handler([]string{"POST"}, tokenLimits.Handler(a.provider.Handler())))
	mux.Handle("/oauth/revoke", a.cors.handler([]string{"POST"}, a.provider.Handler()))
	mux.Handle("/oauth/", a.provider.Handler())
	mux.Handle("/.well-known/oauth-authorization-server", a.provider.Handler())
	if a.jwt {
		mux.Handle(oauth.PathJWKS, a.provider.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.store.DB().PingContext(r.Context()); err != nil {
			a.fail(w, r, apierror.Unavailable(err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /openapi.json", a.openAPIHandler(doc))
	mux.Handle("GET /postman.json", postmanHandler(doc))
	pages := a.dashboard(doc)
	mux.Handle("/dashboard/", pages)
	mux.Handle("GET /docs", pages)
	mux.Handle("GET /callback", pages)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.fail(w, r, apierror.NotFound("")) })

	var h http.Handler = mux
	h = apierror.Recoverer{Logger: a.log}.Handler(h)
	h = a.accessLog(h)
	h = apierror.RequestID(h)
	return h, nil
}

// ---- webhooks API

type webhookView struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	Environment    string   `json:"environment"`
	Enabled        bool     `json:"enabled"`
	DisabledReason *string  `json:"disabled_reason"`
	Secret         *string  `json:"secret,omitempty"`
	CreatedAt      ts       `json:"created_at"`
}

func viewOf(s *storage.Subscription) webhookView {
	v := webhookView{ID: s.ID, URL: s.URL, Events: s.Events, Environment: s.Environment, Enabled: s.Enabled, CreatedAt: ts(s.CreatedAt)}
	if s.DisabledReason != "" {
		v.DisabledReason = &s.DisabledReason
	}
	return v
}

// subscription loads a subscription of the caller's organisation and
// environment; any other is a 404.
func (a *app) subscription(r *http.Request) (*storage.Subscription, error) {
	id, err := pathID(r, "id", "webhook_id", "Webhook")
	if err != nil {
		return nil, err
	}
	s, err := a.store.GetSubscription(r.Context(), id)
	sc := scopeOf(r)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (s.OrganisationID != sc.Org || s.Environment != sc.Env)) {
		return nil, apierror.NotFound("webhook")
	}
	return s, err
}

func (a *app) listWebhooks(w http.ResponseWriter, r *http.Request) {
	p, err := paginate.FromRequest(r, paginate.Options{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	subs, err := a.store.ListSubscriptions(r.Context(), scopeOf(r).Org)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []webhookView{}
	for _, s := range subs {
		if s.Environment == scopeOf(r).Env {
			out = append(out, viewOf(s))
		}
	}
	page := paginate.Slice(out, p)
	paginate.SetHeaders(w, r, p, len(page), len(out))
	writeJSON(w, http.StatusOK, page)
}

// webhookInput is the seeds' {url, events, secret}; without a secret one
// is generated.
type webhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

func (a *app) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in webhookInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	s, err := a.hooks.Create(r.Context(), webhook.SubscriptionParams{OrganisationID: sc.Org, Environment: sc.Env, URL: in.URL, Events: in.Events, Secret: in.Secret})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v := viewOf(s)
	v.Secret = &s.Secret // shown once
	writeJSON(w, http.StatusCreated, v)
}

// webhookPatch changes a subscription: only the members given (a null
// member is not given).
type webhookPatch struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	// Enabled true enables a disabled subscription again; false disables it.
	Enabled *bool `json:"enabled"`
}

func (a *app) updateWebhook(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in webhookPatch
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	u := webhook.SubscriptionUpdate{URL: in.URL, Enabled: in.Enabled}
	if in.Events != nil {
		u.Events = append([]string{}, *in.Events...) // [] is a list, refused as empty
	}
	if s, err = a.hooks.Update(r.Context(), s.ID, u); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(s))
}

// secretInput optionally names the new secret of a rotation.
type secretInput struct {
	Secret string `json:"secret"`
}

// secretRotation answers POST /v1/webhooks/{id}/rotate-secret: the new
// secret, shown once, and until when the previous one still signs.
type secretRotation struct {
	ID                       string `json:"id"`
	Secret                   string `json:"secret"`
	PreviousSecretValidUntil ts     `json:"previous_secret_valid_until"`
}

func (a *app) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in secretInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if s, err = a.hooks.RotateSecret(r.Context(), s.ID, in.Secret); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, secretRotation{ID: s.ID, Secret: s.Secret, PreviousSecretValidUntil: ts(s.PreviousSecretExpiresAt)})
}

func (a *app) getWebhook(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(s))
}

func (a *app) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err == nil {
		err = a.store.DeleteSubscription(r.Context(), s.ID)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type deliveryView struct {
	ID             string  `json:"id"`
	EventID        string  `json:"event_id"`
	EventType      string  `json:"event_type"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *ts     `json:"next_attempt_at"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
	CreatedAt      ts      `json:"created_at"`
}

func (a *app) listDeliveries(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := paginate.FromRequest(r, paginate.Options{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ds, err := a.store.ListDeliveries(r.Context(), s.ID, storage.Page{Offset: p.Offset, Limit: p.Limit})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []deliveryView{}
	for _, d := range ds {
		v := deliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: string(d.Status), Attempts: d.Attempts, CreatedAt: ts(d.CreatedAt)}
		if d.Status == storage.DeliveryPending {
			n := ts(d.NextAttemptAt)
			v.NextAttemptAt = &n
		}
		if d.LastStatusCode != 0 {
			v.LastStatusCode = &d.LastStatusCode
		}
		if d.LastError != "" {
			v.LastError = &d.LastError
		}
		out = append(out, v)
	}
	paginate.SetHeaders(w, r, p, len(out), -1)
	writeJSON(w, http.StatusOK, out)
}

type redelivery struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (a *app) redeliver(w http.ResponseWriter, r *http.Request) {
	d, err := a.pathDelivery(r)
	if err == nil {
		err = a.hooks.Redeliver(r.Context(), d.ID)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, redelivery{ID: d.ID, Status: "pending"})
}

// pathDelivery returns the delivery the path names, of a subscription of
// the caller's organisation and environment.
func (a *app) pathDelivery(r *http.Request) (*storage.Delivery, error) {
	s, err := a.subscription(r)
	if err != nil {
		return nil, err
	}
	did := r.PathValue("delivery")
	if !storage.ValidID(did) {
		return nil, apierror.InvalidParam("delivery_id", "Delivery ID must be a valid UUID")
	}
	return a.deliveryOf(r.Context(), s, did)
}

// testEvent answers POST /v1/webhooks/{id}/test.
type testEvent struct {
	EventID string `json:"event_id"`
	Status  string `json:"status"`
}

func (a *app) testWebhook(w http.ResponseWriter, r *http.Request) {
	s, err := a.subscription(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := a.hooks.SendTest(r.Context(), s.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, testEvent{EventID: id, Status: "pending"})
}

// redeliverOf queues delivery did of subscription s again; a delivery of
// another subscription is a 404, as one that does not exist.
func (a *app) redeliverOf(ctx context.Context, s *storage.Subscription, did string) error {
	if _, err := a.deliveryOf(ctx, s, did); err != nil {
		return err
	}
	return a.hooks.Redeliver(ctx, did)
}

// deliveryOf returns delivery did of subscription s; a delivery of another
// subscription is a 404, as one that does not exist.
func (a *app) deliveryOf(ctx context.Context, s *storage.Subscription, did string) (*storage.Delivery, error) {
	d, err := a.store.GetDelivery(ctx, did)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && d.SubscriptionID != s.ID) {
		return nil, apierror.NotFound("delivery")
	}
	return d, err
}

// attemptView is one attempt of a delivery: when, how long, and what the
// receiver answered (its status and the first 4 KiB of its body) or the
// error that stopped it.
type attemptView struct {
	ID           string  `json:"id"`
	At           ts      `json:"at"`
	DurationMS   int64   `json:"duration_ms"`
	StatusCode   *int    `json:"status_code"`
	ResponseBody *string `json:"response_body"`
	Error        *string `json:"error"`
}

func (a *app) listAttempts(w http.ResponseWriter, r *http.Request) {
	d, err := a.pathDelivery(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	atts, err := a.store.ListAttempts(r.Context(), d.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []attemptView{}
	for _, at := range atts {
		v := attemptView{ID: at.ID, At: ts(at.At), DurationMS: at.Duration.Milliseconds()}
		if at.StatusCode != 0 {
			v.StatusCode = &at.StatusCode
		}
		if at.ResponseBody != "" {
			v.ResponseBody = &at.ResponseBody
		}
		if at.Error != "" {
			v.Error = &at.Error
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- access log

// secretParams are scrubbed from logged URLs.
var secretParams = []string{"access_token", "code", "client_secret", "refresh_token", "token", "password", "state", "code_verifier", "cursor"}

// scrubURL returns the path and query of u with secret parameters
// replaced by "REDACTED".
func scrubURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return u.Path + "?<unparseable>"
	}
	for _, k := range secretParams {
		if _, ok := q[k]; ok {
			q.Set(k, "REDACTED")
		}
	}
	return u.Path + "?" + q.Encode()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one structured line per request; URLs are scrubbed of
// tokens, codes and secrets. It runs inside apierror.RequestID, so once
// the handler returns it reads the principal the chain authenticated (its
// identifiers only: a principal holds no credential).
func (a *app) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		a.metrics.observe(r, rec.status, time.Since(start))
		a.log.Info("request", "method", r.Method, "url", scrubURL(r.URL), "status", rec.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", apierror.RequestIDFromContext(r.Context()),
			"remote", a.clientIP(r), "principal", gatehouse.FromContext(r.Context()))
	})
}

// sweepExpired deletes expired OAuth artefacts (codes, tokens, PKCE
// challenges, sign-in sessions) every interval until ctx ends. An hour's
// grace keeps a just-expired refresh token recognisable as reused. Several
// instances may sweep at once: deleting is idempotent.
func (a *app) sweepExpired(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.store.DeleteExpiredTokens(ctx, time.Now().Add(-time.Hour))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("deleting expired tokens failed", "err", err)
		case n > 0:
			a.log.Info("deleted expired tokens", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ---- settings and demo data

// serverSecret returns the token-signing secret: GATEHOUSE_SECRET, or one
// generated on first start and kept in the database, so that every
// instance sharing the database signs alike.
func serverSecret(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect, fromEnv string) ([]byte, error) {
	if fromEnv != "" {
		if len(fromEnv) < 32 {
			return nil, errors.New("GATEHOUSE_SECRET must be at least 32 characters")
		}
		return []byte(fromEnv), nil
	}
	v, err := appSetting(ctx, db, dialect, "token_secret", func() (string, error) {
		var b [48]byte
		_, _ = rand.Read(b[:])
		return base64.RawStdEncoding.EncodeToString(b[:]), nil
	})
	return []byte(v), err
}

// appSetting returns the value of a setting that every instance on the
// database shares. When there is none it stores what fresh makes (called
// only then): the first instance to start decides it, and the others read
// the same value.
func appSetting(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect, name string, fresh func() (string, error)) (string, error) {
	v, err := readSetting(ctx, db, dialect, name)
	if !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}
	if v, err = fresh(); err != nil {
		return "", err
	}
	if _, err := db.ExecContext(ctx, dialect.Rebind(`INSERT INTO app_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`), name, v); err != nil {
		return "", err
	}
	return readSetting(ctx, db, dialect, name) // another instance's value, if it stored one first
}

// readSetting returns the value of a shared setting; sql.ErrNoRows when
// there is none.
func readSetting(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect, name string) (string, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS app_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`); err != nil {
		return "", err
	}
	var v string
	return v, db.QueryRowContext(ctx, dialect.Rebind(`SELECT value FROM app_settings WHERE name = ?`), name).Scan(&v)
}

// jwtKeys returns the signing keys of JWT access tokens: the exported set
// in fromEnv (GATEHOUSE_JWT_KEYS), or else the set in app_settings, made
// by the first instance to start, so that every instance on the database
// signs and publishes the same keys, and a restart keeps them.
func jwtKeys(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect, fromEnv string) (*oauth.KeySet, error) {
	if fromEnv != "" {
		ks, err := oauth.ParseKeySet([]byte(fromEnv))
		if err != nil {
			return nil, fmt.Errorf("GATEHOUSE_JWT_KEYS: %w", err)
		}
		return ks, nil
	}
	v, err := appSetting(ctx, db, dialect, "jwt_keys", func() (string, error) {
		fresh, err := oauth.NewKeySet()
		if err != nil {
			return "", err
		}
		exported, err := fresh.Export()
		return string(exported), err
	})
	if err != nil {
		return nil, err
	}
	return parseJWTSetting(v)
}

// storedJWTKeys reads the set in app_settings, and its stored text.
func storedJWTKeys(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect) (*oauth.KeySet, string, error) {
	v, err := readSetting(ctx, db, dialect, "jwt_keys")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", errors.New("no JWT keys yet: start the server with -jwt once")
	}
	if err != nil {
		return nil, "", err
	}
	ks, err := parseJWTSetting(v)
	return ks, v, err
}

func parseJWTSetting(v string) (*oauth.KeySet, error) {
	ks, err := oauth.ParseKeySet([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("the jwt_keys setting: %w", err)
	}
	return ks, nil
}

// changeJWTKeys applies change to the set in app_settings and stores the
// result, unless another change was stored meanwhile.
func changeJWTKeys(ctx context.Context, db *sql.DB, dialect sqlstore.Dialect, change func(*oauth.KeySet) error) (*oauth.KeySet, error) {
	ks, old, err := storedJWTKeys(ctx, db, dialect)
	if err != nil {
		return nil, err
	}
	if err := change(ks); err != nil {
		return nil, err
	}
	exported, err := ks.Export()
	if err != nil {
		return nil, err
	}
	res, err := db.ExecContext(ctx, dialect.Rebind(`UPDATE app_settings SET value = ? WHERE name = 'jwt_keys' AND value = ?`), string(exported), old)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, errors.New("the JWT keys changed meanwhile; run the command again")
	}
	return ks, nil
}

// demoCredentials are printed once, on the first start.
type demoCredentials struct {
	Organisation, Email, Password, ClientID, ClientSecret, RedirectURI string
	TestKey, LiveKey                                                   string
}

// seedDemo creates the demo organisation, user, application and keys, and
// its sandbox's test data (seedSandbox), when the database has no "demo"
// organisation. It returns nil when it did not.
func (a *app) seedDemo(ctx context.Context, redirect string) (*demoCredentials, error) {
	if _, err := a.store.GetOrganisationByPrefix(ctx, "demo"); err == nil {
		return nil, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo Organisation", Plan: "standard", CreatedAt: time.Now().UTC()}
	if err := a.store.CreateOrganisation(ctx, org); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, nil // another instance seeded it at the same moment
		}
		return nil, err
	}
	pw := oauth.GenerateSecret()[:20]
	u, err := a.provider.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "demo@example.com", Password: pw, FirstName: "Demo", LastName: "User"})
	if err != nil {
		return nil, err
	}
	var all []string
	for _, s := range a.catalog.Scopes() {
		all = append(all, s.Name)
	}
	secret, c, err := a.provider.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "Demo App", RedirectURIs: []string{redirect},
		Grants: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantImplicit, oauth.GrantPassword, oauth.GrantClientCredentials}, Scopes: all})
	if err != nil {
		return nil, err
	}
	test, _, err := a.keys.Create(ctx, apikey.CreateParams{OrganisationID: org.ID, OwnerID: u.ID, Name: "Demo test key", Scopes: all, Environment: gatehouse.Test})
	if err != nil {
		return nil, err
	}
	live, _, err := a.keys.Create(ctx, apikey.CreateParams{OrganisationID: org.ID, OwnerID: u.ID, Name: "Demo live key", Scopes: all, Environment: gatehouse.Live})
	if err != nil {
		return nil, err
	}
	if _, err := a.records.seedSandbox(ctx, org.ID); err != nil {
		return nil, err
	}
	return &demoCredentials{Organisation: "demo", Email: u.Email, Password: pw, ClientID: c.ID, ClientSecret: secret, RedirectURI: redirect,
		TestKey: test.Reveal(), LiveKey: live.Reveal()}, nil
}

func (d *demoCredentials) print(w interface{ Write([]byte) (int, error) }, base string) {
	fmt.Fprintf(w, `
Demo data created (shown once; keep it):
  organisation (domain_prefix)  %s
  user                          %s / %s
  OAuth client                  %s
  client secret                 %s
  redirect URI                  %s
  test API key (sandbox)        %s
  live API key                  %s

Try it:
  curl -H "Authorization: Bearer %s" %s/v1/contacts/me
  curl -d "grant_type=password&domain_prefix=demo&client_id=%s&client_secret=%s&username=%s&password=%s" %s/oauth/token

`, d.Organisation, d.Email, d.Password, d.ClientID, d.ClientSecret, d.RedirectURI, d.TestKey, d.LiveKey,
		d.TestKey, base, d.ClientID, d.ClientSecret, url.QueryEscape(d.Email), url.QueryEscape(d.Password), base)
}
