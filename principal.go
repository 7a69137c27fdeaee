package gatehouse

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/reqctx"
)

// Method says how a principal authenticated.
type Method string

// Authentication methods set by Gatehouse's authenticators.
const (
	MethodAPIKey      Method = "api_key"
	MethodOAuthToken  Method = "oauth_token"
	MethodJWT         Method = "jwt"
	MethodIntrospect  Method = "introspection"
	MethodSession     Method = "session"
	MethodUnspecified Method = ""
)

// Environment separates sandbox data from production data. A principal's
// environment decides which data it may see: a test key never reads or
// changes live data, and the reverse.
type Environment string

// The two environments of the seed's sandbox.
const (
	Live Environment = "live"
	Test Environment = "test"
)

// Valid reports whether e is Live or Test.
func (e Environment) Valid() bool { return e == Live || e == Test }

// Principal is who is calling: the result of authenticating a request.
// Authenticators fill it; handlers, scope guards and rate limiters read it
// with [FromContext]. A Principal is immutable once stored in a context.
type Principal struct {
	// Subject is the user (or service) on whose behalf the request is
	// made: a user id for user-bound tokens and keys, the client id for
	// client-credentials tokens.
	Subject string
	// Organisation is the tenant whose data the request may touch.
	Organisation string
	// ClientID is the OAuth client the token was issued to, if any.
	ClientID string
	// KeyID is the public id of the API key used, if any.
	KeyID string
	// Scopes are the granted scopes, space-free strings such as
	// "bookings:read". Use [Principal.HasScope] or the scope package's
	// guards rather than reading them directly.
	Scopes []string
	// Environment is Live or Test. Authenticators that know nothing of
	// sandboxes set Live.
	Environment Environment
	// Method says how the request authenticated.
	Method Method
	// RateLimitPolicy names the rate-limit policy for this principal
	// ("standard", "enterprise", or a custom policy string such as
	// "1000/h,100/m"); empty means the limiter's default.
	RateLimitPolicy string
	// ExpiresAt is when the credential stops being valid; zero means it
	// does not expire.
	ExpiresAt time.Time
	// LimitKey, when set, is the counter rate limits count this principal
	// against, as [Principal.RateLimitKey] returns it. Empty derives it
	// from KeyID, ClientID and Subject. Authenticators that build a
	// principal once and serve it from a cache set it with
	// [Principal.SetLimitKey], so that no request has to build the string;
	// one that wants several credentials to share a budget (say, one per
	// organisation) sets its own.
	LimitKey string
}

// HasScope reports whether s is one of the granted scopes, exactly. It
// does not apply a catalog's implications; the scope package's guards do.
func (p *Principal) HasScope(s string) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// RateLimitKey is the identity rate limits are counted against: LimitKey
// when set, or else the API key id, or else the OAuth client and subject,
// or else the subject.
func (p *Principal) RateLimitKey() string {
	switch {
	case p == nil:
		return ""
	case p.LimitKey != "":
		return p.LimitKey
	case p.KeyID != "":
		return "key:" + p.KeyID
	case p.ClientID != "":
		return "client:" + p.ClientID + ":" + p.Subject
	default:
		return "sub:" + p.Subject
	}
}

// SetLimitKey fills LimitKey with the key derived from KeyID, ClientID and
// Subject (when it is empty) and returns p. Call it once the identifying
// fields are final: LimitKey does not follow later changes to them.
func (p *Principal) SetLimitKey() *Principal {
	if p != nil && p.LimitKey == "" {
		p.LimitKey = p.RateLimitKey()
	}
	return p
}

// LogValue implements slog.LogValuer: a principal logs its identifiers,
// never a credential (it holds none).
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("anonymous")
	}
	return slog.GroupValue(
		slog.String("subject", p.Subject),
		slog.String("organisation", p.Organisation),
		slog.String("client_id", p.ClientID),
		slog.String("key_id", p.KeyID),
		slog.String("method", string(p.Method)),
		slog.String("environment", string(p.Environment)),
	)
}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return &principalContext{Context: ctx, p: p}
}

// FromContext returns the principal stored by [NewContext] or by the
// [Chain] middleware, or nil when the request is anonymous.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(reqctx.PrincipalKey{}).(*Principal)
	return p
}

// principalContext is NewContext's node: what context.WithValue would make,
// except that it also hides any request slot (internal/reqctx) above it,
// since filling that slot would put a principal behind this nearer one.
type principalContext struct {
	context.Context
	p *Principal
}

func (c *principalContext) Value(key any) any {
	switch key.(type) {
	case reqctx.PrincipalKey:
		return c.p
	case reqctx.SlotKey:
		return nil
	}
	return c.Context.Value(key)
}

// withPrincipal returns r carrying p: r itself, with p in its request's
// slot, when r is the request apierror.RequestID passed on and its context
// holds no principal yet; otherwise a copy of r with a context of its own.
func withPrincipal(r *http.Request, p *Principal) *http.Request {
	if s := reqctx.Of(r.Context()); s != nil && s.Fill(r, p) {
		return r
	}
	return r.WithContext(NewContext(r.Context(), p))
}
