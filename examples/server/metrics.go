package main

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// metrics are served at GET /metrics in the Prometheus text format.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
}

func newMetrics(s *sqlstore.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_http_requests_total",
			Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gatehouse_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_auth_failures_total",
			Help: "Requests refused by authentication, by reason."}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_rate_limited_total",
			Help: "Requests refused by a rate limit, by the window that refused."}, []string{"window"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome."}, []string{"outcome"}),
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_storage_waiting_writes",
		Help: "Storage writes waiting for another to end (SQLite writes one at a time; always 0 on PostgreSQL)."},
		func() float64 { return float64(s.WaitingWrites()) })
	m.reg.MustRegister(m.requests, m.duration, m.authFailures, m.rateLimited, m.deliveries, waiting,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Resources and actions of the API, the only words a route label keeps.
var (
	resources = map[string]bool{"customers": true, "bookings": true, "payments": true, "staff": true, "analytics": true, "webhooks": true, "contacts": true}
	actions   = map[string]bool{"me": true, "summary": true, "cancel": true, "refund": true, "schedule": true, "deliveries": true, "redeliver": true}
	oauthEnds = map[string]bool{"authorize": true, "token": true, "revoke": true, "introspect": true}
)

// route names a request's route with a bounded set of values:
// /v1/customers/<anything>/… becomes /v1/customers/{id}/…, and paths
// outside the API become "other", so a client cannot grow the label set.
func route(path string) string {
	switch path {
	case "/healthz", "/.well-known/oauth-authorization-server", oauth.PathJWKS:
		return path
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "oauth" && oauthEnds[parts[1]]:
		return path
	case len(parts) < 2 || len(parts) > 6 || parts[0] != "v1" || !resources[parts[1]]:
		return "other"
	}
	for i := 2; i < len(parts); i++ {
		if !actions[parts[i]] {
			parts[i] = "{id}"
		}
	}
	return "/" + strings.Join(parts, "/")
}

func (m *metrics) observe(r *http.Request, status int, took time.Duration) {
	rt := route(r.URL.Path)
	m.requests.WithLabelValues(rt, r.Method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(rt).Observe(took.Seconds())
}

// authError counts an authentication failure by reason, then writes it.
func (a *app) authError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierror.From(err)
	reason := "error"
	switch {
	case e.Status == http.StatusBadRequest:
		reason = "malformed"
	case e.Status == http.StatusUnauthorized:
		reason = "missing"
		if d, ok := e.Details.(map[string]string); ok && d["reason"] != "" {
			reason = strings.ToLower(d["reason"]) // the API key's reason
		} else if strings.Contains(e.Header.Get("WWW-Authenticate"), "invalid_token") {
			reason = "invalid_token"
		}
	}
	a.metrics.authFailures.WithLabelValues(reason).Inc()
	a.fail(w, r, err)
}

// limitError counts a rate-limit refusal by window, then writes it.
func (a *app) limitError(w http.ResponseWriter, r *http.Request, err error) {
	var e *apierror.Error
	if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
		window := "unknown"
		if d, ok := e.Details.(ratelimit.RefusalDetails); ok {
			window = d.Window
		}
		a.metrics.rateLimited.WithLabelValues(window).Inc()
	}
	a.fail(w, r, err)
}

func (m *metrics) delivery(_ storage.Attempt, st storage.DeliveryStatus) {
	outcome := string(st)
	if st == storage.DeliveryPending {
		outcome = "retrying"
	}
	m.deliveries.WithLabelValues(outcome).Inc()
}
