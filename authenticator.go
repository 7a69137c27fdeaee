package gatehouse

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// ErrNoCredentials is returned by an [Authenticator] when the request
// carries no credential of its kind, so the next authenticator may try. Any
// other error means "a credential of my kind was here and it is not valid"
// and stops the chain.
var ErrNoCredentials = errors.New("gatehouse: no credentials of this kind")

// Authenticator decides who is calling. Authenticate returns the principal
// for a valid credential; [ErrNoCredentials] (possibly wrapped) when there
// is no credential it recognises; and otherwise an error, preferably an
// *apierror.Error such as apierror.InvalidToken("API key revoked"), that is
// sent to the client as it is. Errors that are not *apierror.Error are
// treated as internal failures: logged, and answered with a 500.
//
// Implementations must be safe for concurrent use.
type Authenticator interface {
	Authenticate(r *http.Request) (*Principal, error)
}

// AuthenticatorFunc adapts a function to the [Authenticator] interface.
type AuthenticatorFunc func(r *http.Request) (*Principal, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (*Principal, error) { return f(r) }

// ChainConfig holds the optional settings of a [Chain]. The zero value is
// ready to use.
type ChainConfig struct {
	// ErrorHandler writes the response when authentication fails.
	// Default: apierror.Writer{Logger: Logger}.Write, which sends 401 in
	// the JSON envelope (with WWW-Authenticate) and 500 for internal
	// failures.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives internal failures of authenticators. Default:
	// slog.Default().
	Logger *slog.Logger
	// OnRefused, when set, is called before ErrorHandler for each request
	// whose credential was present and refused (not for a request with
	// none, nor for an internal failure): the hook for counting failures
	// per client, as [github.com/gatehouse-go/gatehouse/ratelimit.FailureBudget.Spend]
	// does, or for metrics.
	OnRefused func(r *http.Request, err error)
}

// Chain is middleware that tries a list of authenticators in order and
// stores the first principal found in the request context, where
// [FromContext] finds it. It is safe for concurrent use.
//
// Behind [apierror.RequestID] the principal goes into the context that
// RequestID made for the request, instead of a new context and a copy of
// the *http.Request: the request next receives is the one the chain
// received, and middleware outside the chain (an access log, say) reads
// FromContext(r.Context()) of its own r once the handler has returned.
// That context takes one principal, once, and only from a chain serving
// the very *http.Request that RequestID passed on: a second chain in the
// same request, a sub-request served with the request's context, or a
// request copied on the way (a router outside RequestID adding a context
// of its own, say) stores its principal in a context of its own, which is
// the one FromContext then finds. So do requests with no RequestID
// outside the chain, or with a principal stored already by [NewContext].
type Chain struct {
	auths     []Authenticator
	onError   func(w http.ResponseWriter, r *http.Request, err error)
	onRefused func(r *http.Request, err error)
}

// NewChain returns a Chain that tries auths in order. It is an error to
// give no authenticator or a nil one.
func NewChain(cfg ChainConfig, auths ...Authenticator) (*Chain, error) {
	if len(auths) == 0 {
		return nil, errors.New("gatehouse: NewChain needs at least one authenticator")
	}
	for i, a := range auths {
		if a == nil {
			return nil, fmt.Errorf("gatehouse: authenticator %d is nil", i)
		}
	}
	c := &Chain{auths: append([]Authenticator(nil), auths...), onError: cfg.ErrorHandler, onRefused: cfg.OnRefused}
	if c.onError == nil {
		c.onError = apierror.Writer{Logger: cfg.Logger}.Write
	}
	return c, nil
}

// Authenticate asks each authenticator in turn. It returns the first
// principal found, the first error other than [ErrNoCredentials], or
// [ErrNoCredentials] when none recognised a credential.
func (c *Chain) Authenticate(r *http.Request) (*Principal, error) {
	for _, a := range c.auths {
		p, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fmt.Errorf("gatehouse: authenticator %T returned neither a principal nor an error", a)
		}
		return p, nil
	}
	return nil, ErrNoCredentials
}

// Handler requires authentication: a request without credentials, or with
// credentials that are rejected, is answered with 401 and never reaches
// next.
func (c *Chain) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.Authenticate(r)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		privateWhenQueryToken(w, r)
		next.ServeHTTP(w, withPrincipal(r, p))
	})
}

// Optional lets anonymous requests through to next with no principal in the
// context. Credentials that are present but rejected are still answered
// with 401: a bad credential is never silently downgraded to anonymous.
func (c *Chain) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.Authenticate(r)
		switch {
		case errors.Is(err, ErrNoCredentials):
			next.ServeHTTP(w, r)
		case err != nil:
			c.fail(w, r, err)
		default:
			privateWhenQueryToken(w, r)
			next.ServeHTTP(w, withPrincipal(r, p))
		}
	})
}

// privateWhenQueryToken marks the response to an authenticated request
// whose URL names the access_token query parameter Cache-Control:
// private, as RFC 6750 §2.3 asks of a server that accepts it: a shared
// cache must not keep a response filed under a URL that carries a
// credential (nor the Link headers that repeat that URL). A credential in
// the Authorization header needs nothing: shared caches do not reuse
// responses to such requests unless told to (RFC 9111 §3.5). The test is
// the one [BearerToken] starts with, so it errs towards private; a
// handler that sets its own Cache-Control overrides it.
func privateWhenQueryToken(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery == "" || !strings.Contains(r.URL.RawQuery, QueryAccessToken) {
		return
	}
	if h := w.Header(); h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "private")
	}
}

func (c *Chain) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNoCredentials) {
		err = apierror.Unauthorized("Authentication is required: send an API key or access token as Authorization: Bearer <credential>")
	} else if c.onRefused != nil && apierror.From(err).Status < http.StatusInternalServerError {
		c.onRefused(r, err)
	}
	c.onError(w, r, err)
}
