package ratelimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/headerval"
)

// Header names.
const (
	HeaderLimit     = "X-RateLimit-Limit"
	HeaderRemaining = "X-RateLimit-Remaining"
	HeaderReset     = "X-RateLimit-Reset"
	HeaderPolicy    = "RateLimit-Policy"
	HeaderRateLimit = "RateLimit"
)

// ExposedHeaders returns the response headers a [Middleware] may set
// (Retry-After on refusals; RateLimit-Policy and RateLimit with
// Config.IETFHeaders), for the Access-Control-Expose-Headers of a CORS
// layer: without it, a script on another origin cannot read them.
func ExposedHeaders() []string {
	return []string{HeaderLimit, HeaderRemaining, HeaderReset, "Retry-After", HeaderPolicy, HeaderRateLimit}
}

// Canonical MIME forms of the header names (HTTP header names are
// case-insensitive; Go stores them canonicalised).
const (
	canonicalLimit     = "X-Ratelimit-Limit"
	canonicalRemaining = "X-Ratelimit-Remaining"
	canonicalReset     = "X-Ratelimit-Reset"
	canonicalPolicy    = "Ratelimit-Policy"
	canonicalRateLimit = "Ratelimit"
)

// The seed's tiers: 1000 requests an hour with bursts of at most 100 a
// minute, and ten times that for enterprise accounts.
var (
	Standard   = MustPolicy("standard", "1000/h,100/m")
	Enterprise = MustPolicy("enterprise", "10000/h,1000/m")
)

// Config holds the settings of a [Middleware]. The zero value limits every
// principal by the Standard policy and anonymous requests by client IP.
type Config struct {
	// Tiers maps policy names to policies. A principal's RateLimitPolicy
	// (as returned by Resolve) is looked up here first, then parsed as a
	// policy string ("5000/h,500/m"). Default: "standard" and "enterprise".
	Tiers map[string]Policy
	// Default applies when the name is empty or unknown. Default: Standard.
	Default *Policy
	// Anonymous applies to requests with no principal, keyed by client IP
	// (the token endpoint, for one). Default: Default.
	Anonymous *Policy
	// Resolve names the policy for a request: a tier name or a policy
	// string. Default: the principal's RateLimitPolicy. An application
	// returns the organisation's plan here when a key has no override.
	Resolve func(r *http.Request, p *gatehouse.Principal) string
	// Key names the counter a request counts against. Default: the
	// principal's RateLimitKey (API key, or OAuth client and subject), or
	// "ip:" and the client's [AddressKey] when anonymous.
	Key func(r *http.Request, p *gatehouse.Principal) string
	// Cost is how much a request counts (a batch endpoint may count each
	// item). Default: 1. A cost below 1 is taken as 1.
	Cost func(r *http.Request) int64
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	// Default: none; the client IP is the host of RemoteAddr.
	TrustedProxies []netip.Prefix
	// IETFHeaders also sends RateLimit-Policy and RateLimit (the IETF
	// httpapi draft) describing every window.
	IETFHeaders bool
	// ErrorHandler writes refusals and failures. Default: apierror.Writer.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives limiter failures. Default: silent.
	Logger *slog.Logger
}

// Middleware enforces rate limits and sets the X-RateLimit-* headers on
// every response. It is safe for concurrent use.
type Middleware struct {
	limiter Limiter
	cfg     Config
	parsed  sync.Map // policy string → Policy
	onError func(w http.ResponseWriter, r *http.Request, err error)
	log     *slog.Logger
}

// New returns a Middleware deciding with l.
func New(l Limiter, cfg Config) (*Middleware, error) {
	if l == nil {
		return nil, errors.New("ratelimit: New needs a limiter")
	}
	if cfg.Tiers == nil {
		cfg.Tiers = map[string]Policy{"standard": Standard, "enterprise": Enterprise}
	}
	for name, p := range cfg.Tiers {
		if !p.usable() {
			return nil, fmt.Errorf("ratelimit: tier %q needs 1 to %d windows", name, MaxWindows)
		}
	}
	if cfg.Default == nil {
		d := Standard
		cfg.Default = &d
	}
	if cfg.Anonymous == nil {
		cfg.Anonymous = cfg.Default
	}
	m := &Middleware{limiter: l, cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.onError = cfg.ErrorHandler
	if m.onError == nil {
		m.onError = apierror.Writer{Logger: cfg.Logger}.Write
	}
	return m, nil
}

// policy resolves a tier name or policy string.
func (m *Middleware) policy(name string) Policy {
	if name == "" {
		return *m.cfg.Default
	}
	if p, ok := m.cfg.Tiers[name]; ok {
		return p
	}
	if p, ok := m.parsed.Load(name); ok {
		return p.(Policy)
	}
	p, err := ParsePolicy(name)
	if err != nil {
		m.log.Warn("unknown rate-limit policy; using the default", "policy", name, "err", err)
		p = *m.cfg.Default
	}
	m.parsed.Store(name, p)
	return p
}

// Check decides for r, counting it, and writes nothing to the response.
func (m *Middleware) Check(r *http.Request) (Result, error) {
	key, pol := m.resolve(r)
	cost := int64(1)
	if m.cfg.Cost != nil {
		cost = max(1, m.cfg.Cost(r))
	}
	return m.limiter.Allow(r.Context(), key, pol, cost)
}

// resolve returns the key r counts against and its policy.
func (m *Middleware) resolve(r *http.Request) (string, Policy) {
	p := gatehouse.FromContext(r.Context())
	var key string
	switch {
	case m.cfg.Key != nil:
		key = m.cfg.Key(r, p)
	case p != nil:
		key = p.RateLimitKey()
	default:
		key = "ip:" + AddressKey(ClientIP(r, m.cfg.TrustedProxies))
	}
	switch {
	case m.cfg.Resolve != nil:
		return key, m.policy(m.cfg.Resolve(r, p))
	case p != nil:
		return key, m.policy(p.RateLimitPolicy)
	}
	return key, *m.cfg.Anonymous
}

// Status reports the windows of r's caller as they stand, counting
// nothing (a decision of cost zero, one round trip on Redis).
func (m *Middleware) Status(r *http.Request) (Result, error) {
	key, pol := m.resolve(r)
	return m.limiter.Allow(r.Context(), key, pol, 0)
}

// Status is the body [Middleware.StatusHandler] answers with.
type Status struct {
	Windows []WindowStatus `json:"windows"`
}

// WindowStatus is one window of a [Status].
type WindowStatus struct {
	// Window is its compact form ("100/m").
	Window    string `json:"window"`
	Limit     int64  `json:"limit"`
	Used      int64  `json:"used"`
	Remaining int64  `json:"remaining"`
	// Reset is when it starts again, in Unix seconds, as X-RateLimit-Reset.
	Reset int64 `json:"reset"`
}

// StatusHandler answers a caller with its windows as they stand, in the
// X-RateLimit-* headers and a [Status] body, without counting the
// request: for an endpoint where a client checks its budget before it
// spends it (GitHub's GET /rate_limit). Mount it beside, not behind,
// [Middleware.Handler]: behind it, the request would count. A failing
// limiter is a 503, as in Handler; one that admits without counting
// (FailOpen) gives no windows.
func (m *Middleware) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := m.Status(r)
		if err != nil {
			m.log.Error("rate limiter failed", "err", err)
			m.onError(w, r, apierror.Unavailable(err))
			return
		}
		m.setHeaders(w.Header(), &res)
		out := Status{Windows: make([]WindowStatus, 0, res.N)}
		for _, wr := range res.Windows[:res.N] {
			out.Windows = append(out.Windows, WindowStatus{Window: wr.Window.String(), Limit: wr.Window.Limit, Used: wr.Used,
				Remaining: wr.Remaining(), Reset: resetUnix(wr.Reset)})
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// Handler wraps next: it sets the headers, and answers 429 RATE_LIMITED
// (with Retry-After and the window in the details) when the request is
// refused, or 503 when the limiter fails and its failure mode says so.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := m.Check(r)
		if err != nil {
			m.log.Error("rate limiter failed", "err", err)
			m.onError(w, r, apierror.Unavailable(err))
			return
		}
		m.setHeaders(w.Header(), &res)
		if !res.Allowed {
			m.onError(w, r, refusal(&res))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RefusalDetails is the "details" object of a 429.
type RefusalDetails struct {
	// Window is the window that refused ("100/m").
	Window    string `json:"window"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	// Reset is when that window resets, in Unix seconds.
	Reset int64 `json:"reset"`
}

func refusal(res *Result) error {
	// Name the refusing window that resets last: waiting for it is enough.
	var worst WindowResult
	for _, w := range res.Windows[:res.N] {
		if w.Used+res.Cost > w.Window.Limit && (worst.Reset.IsZero() || w.Reset.After(worst.Reset)) {
			worst = w
		}
	}
	return Refusal(worst, res.RetryAfter)
}

// Refusal is the 429 for a request refused by window w: its details name
// the window, and Retry-After is after rounded up to whole seconds.
func Refusal(w WindowResult, after time.Duration) error {
	secs := int64((after + time.Second - 1) / time.Second)
	return apierror.RateLimited(secs, RefusalDetails{Window: w.Window.String(), Limit: w.Window.Limit, Remaining: w.Remaining(), Reset: resetUnix(w.Reset)})
}

// resetUnix rounds a reset time up to whole Unix seconds.
func resetUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

func (m *Middleware) setHeaders(h http.Header, res *Result) {
	if res.N == 0 {
		return // a fail-open answer: nothing was counted
	}
	b := res.Binding()
	// Canonical keys set directly: Header.Set would re-canonicalise the
	// mixed-case names on every response. The three numbers and their
	// value slices share one allocation, not six.
	v := new(limitHeaders)
	num := strconv.AppendInt(v.buf[:0], b.Window.Limit, 10)
	i := len(num)
	num = strconv.AppendInt(num, b.Remaining(), 10)
	j := len(num)
	num = strconv.AppendInt(num, resetUnix(b.Reset), 10)
	all := headerval.Freeze(num) // v.buf is never written again
	v.vals = [3]string{all[:i], all[i:j], all[j:]}
	h[canonicalLimit] = v.vals[0:1:1]
	h[canonicalRemaining] = v.vals[1:2:2]
	h[canonicalReset] = v.vals[2:3:3]
	if !m.cfg.IETFHeaders {
		return
	}
	// RateLimit-Policy: "1000/h";q=1000;w=3600, "100/m";q=100;w=60
	// RateLimit:        "1000/h";r=999;t=2670, "100/m";r=99;t=30
	// Both in one more buffer (and their two value slices); the seconds
	// are counted from the decision's own time, on the limiter's clock.
	ietf := make([]byte, 0, 64*res.N)
	for i, w := range res.Windows[:res.N] {
		if i > 0 {
			ietf = append(ietf, ", "...)
		}
		ietf = appendQuotedWindow(ietf, w.Window)
		ietf = append(ietf, ";q="...)
		ietf = strconv.AppendInt(ietf, w.Window.Limit, 10)
		ietf = append(ietf, ";w="...)
		ietf = strconv.AppendInt(ietf, int64(w.Window.Period/time.Second), 10)
	}
	pol := len(ietf)
	for i, w := range res.Windows[:res.N] {
		if i > 0 {
			ietf = append(ietf, ", "...)
		}
		ietf = appendQuotedWindow(ietf, w.Window)
		ietf = append(ietf, ";r="...)
		ietf = strconv.AppendInt(ietf, w.Remaining(), 10)
		ietf = append(ietf, ";t="...)
		ietf = strconv.AppendInt(ietf, max(0, int64(w.Reset.Sub(res.At)+time.Second-1)/int64(time.Second)), 10)
	}
	both := headerval.Freeze(ietf) // ietf is never written again
	iv := &[2]string{both[:pol], both[pol:]}
	h[canonicalPolicy] = iv[0:1:1]
	h[canonicalRateLimit] = iv[1:2:2]
}

// appendQuotedWindow appends the window's compact form as a structured
// field string ("100/m": digits, a slash and a unit need no escaping).
func appendQuotedWindow(b []byte, w Window) []byte {
	b = append(b, '"')
	return append(w.appendTo(b), '"')
}

// limitHeaders holds the X-RateLimit-* values of one response: three
// int64s fit buf (at most 20 bytes each).
type limitHeaders struct {
	vals [3]string
	buf  [60]byte
}

// ClientIP returns the address a request came from: the host of RemoteAddr,
// or, when RemoteAddr is in one of the trusted networks, the right-most
// address of X-Forwarded-For that is not itself trusted.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(trusted) == 0 || !isTrusted(host, trusted) {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			ip := strings.TrimSpace(parts[j])
			if _, err := netip.ParseAddr(ip); err != nil {
				return host // garbage: do not trust anything further left
			}
			if !isTrusted(ip, trusted) {
				return ip
			}
		}
	}
	return host
}

// AddressKey returns what a per-address limit counts for a client
// address: an IPv4 address whole (an IPv4-mapped IPv6 one as IPv4), an
// IPv6 address's /64, and anything that does not parse as it is. A /64 is
// what one subscriber is usually given, and a client picks freely among
// its 2^64 addresses: counting each one alone would give it a fresh
// budget per request.
func AddressKey(ip string) string {
	parsed, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if parsed.Is4() {
		// ParseAddr takes IPv4 only in its canonical dotted form (no
		// leading zeros): ip is the key as it is, with no allocation.
		return ip
	}
	a := parsed.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

func isTrusted(ip string, trusted []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
