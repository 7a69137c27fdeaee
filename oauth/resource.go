package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/digestcache"
	"github.com/gatehouse-go/gatehouse/storage"
)

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }

// ResourceConfig holds the optional settings of the resource-server
// authenticator.
type ResourceConfig struct {
	// AllowQueryToken also accepts the token as the access_token query
	// parameter (RFC 6750 §2.3), as TidyHQ's API does. Off by default:
	// URLs end up in logs and Referer headers. Scrub them from logs.
	// gatehouse.Chain marks the responses to such requests
	// Cache-Control: private.
	AllowQueryToken bool
	// CacheTTL bounds how long a validated token is trusted without
	// reading the store: the bound on how late another instance honours a
	// revocation. Revocation through this provider is immediate here.
	// Default: 5 s.
	CacheTTL time.Duration
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// ResourceAuthenticator validates the provider's opaque access tokens on
// API requests. It implements gatehouse.Authenticator and is safe for
// concurrent use.
type ResourceAuthenticator struct {
	p   *Provider
	cfg ResourceConfig
}

var _ gatehouse.Authenticator = (*ResourceAuthenticator)(nil)

// Authenticator returns the resource-server authenticator for this
// provider's tokens.
func (p *Provider) Authenticator(cfg ResourceConfig) *ResourceAuthenticator {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ResourceAuthenticator{p: p, cfg: cfg}
}

// Authenticate implements gatehouse.Authenticator. Credentials without the
// access-token prefix (gate_at_) are declined, so API keys pass to the next
// authenticator; an expired, revoked or unknown token is a 401.
func (a *ResourceAuthenticator) Authenticate(r *http.Request) (*gatehouse.Principal, error) {
	tok, err := gatehouse.BearerToken(r, a.cfg.AllowQueryToken)
	if err != nil {
		return nil, err
	}
	isJWT := a.p.jwtVerify != nil && looksLikeJWT(tok)
	if !strings.HasPrefix(tok, PrefixAccessToken) && !isJWT {
		return nil, gatehouse.ErrNoCredentials
	}
	now := a.cfg.Now()
	if isJWT {
		return a.authenticateJWT(r, tok, now)
	}
	key := digestcache.Sum(tok)
	if e := a.p.tokens.get(key); e != nil && now.Before(e.expires) {
		if !e.tokenExp.IsZero() && !now.Before(e.tokenExp) {
			return nil, apierror.InvalidToken("The access token has expired")
		}
		return e.principal, nil
	}
	_, ar, err := a.p.fosite.IntrospectToken(r.Context(), tok, fosite.AccessToken, &Session{})
	switch {
	case errors.Is(err, fosite.ErrTokenExpired):
		return nil, apierror.InvalidToken("The access token has expired")
	case errors.Is(err, fosite.ErrRequestUnauthorized), errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken),
		errors.Is(err, fosite.ErrTokenSignatureMismatch), errors.Is(err, fosite.ErrInvalidTokenFormat):
		return nil, apierror.InvalidToken("The access token is not valid (revoked, unknown or malformed)")
	case err != nil:
		var rfc *fosite.RFC6749Error
		if errors.As(err, &rfc) && rfc.CodeField < 500 {
			return nil, apierror.InvalidToken("The access token is not valid")
		}
		return nil, apierror.Unavailable(err)
	}
	s, _ := ar.GetSession().(*Session)
	if s == nil {
		return nil, apierror.Internal(errors.New("oauth: token without a session"))
	}
	p := &gatehouse.Principal{
		Subject: s.Subject, Organisation: s.Organisation, ClientID: ar.GetClient().GetID(),
		Scopes: a.p.stillAllowed(ar.GetGrantedScopes(), ar.GetClient().GetScopes()), Environment: gatehouse.Live, Method: gatehouse.MethodOAuthToken,
	}
	p.SetLimitKey()
	e := &tokenEntry{principal: p, requestID: ar.GetID(), expires: now.Add(a.cfg.CacheTTL)}
	if exp := s.GetExpiresAt(fosite.AccessToken); !exp.IsZero() && exp.Sub(now) < noExpiryLifespan/2 {
		p.ExpiresAt, e.tokenExp = exp, exp
	}
	a.p.tokens.Put(key, e)
	return p, nil
}

// authenticateJWT checks a JWT access token against the provider's keys
// (any published one, so tokens survive a rotation) and then against
// storage, so a revoked JWT is refused here even before it expires.
func (a *ResourceAuthenticator) authenticateJWT(r *http.Request, tok string, now time.Time) (*gatehouse.Principal, error) {
	key := digestcache.Sum(tok)
	if e := a.p.tokens.get(key); e != nil && now.Before(e.expires) && now.Before(e.tokenExp) {
		return e.principal, nil
	}
	c, err := a.p.jwtVerify.Verify(r.Context(), tok)
	if err != nil {
		return nil, jwtRefusal(err)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	t, err := a.p.store.GetToken(r.Context(), storage.KindAccessToken, sig)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !t.Active) {
		return nil, apierror.InvalidToken("The access token has been revoked")
	}
	if err != nil {
		return nil, apierror.Unavailable(err)
	}
	// A deleted application's tokens end with it, as an opaque token's
	// do (loading its request loads its client).
	app, err := a.p.store.GetClient(r.Context(), t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierror.InvalidToken("The access token's application has been deleted")
	} else if err != nil {
		return nil, apierror.Unavailable(err)
	}
	p := &gatehouse.Principal{Subject: t.Subject, Organisation: t.OrganisationID, ClientID: t.ClientID, Scopes: a.p.stillAllowed(t.Scopes, app.Scopes),
		Environment: gatehouse.Live, Method: gatehouse.MethodJWT, ExpiresAt: c.Expiry}
	p.SetLimitKey()
	a.p.tokens.Put(key, &tokenEntry{principal: p, requestID: t.RequestID, expires: now.Add(a.cfg.CacheTTL), tokenExp: c.Expiry})
	return p, nil
}

// tokenCache holds validated access tokens by the SHA-256 of the token.
type tokenCache struct {
	*digestcache.Cache[*tokenEntry]
}

type tokenEntry struct {
	principal *gatehouse.Principal
	requestID string
	expires   time.Time
	tokenExp  time.Time
}

const tokenCacheMax = 100_000

func newTokenCache() tokenCache { return tokenCache{digestcache.New[*tokenEntry](tokenCacheMax)} }

func (c tokenCache) get(k [32]byte) *tokenEntry {
	e, _ := c.Get(k)
	return e
}

// dropRequest removes every cached token of a grant.
func (c tokenCache) dropRequest(id string) {
	c.DeleteFunc(func(e *tokenEntry) bool { return e.requestID == id })
}
