package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/digestcache"
)

// IntrospectorConfig configures a [RemoteIntrospector].
type IntrospectorConfig struct {
	// URL is the RFC 7662 introspection endpoint; ClientID and
	// ClientSecret authenticate this resource server to it (HTTP Basic).
	URL, ClientID, ClientSecret string
	// TokenPrefix selects the credentials to check; others are declined
	// (so API keys pass to their own authenticator). Default: "gate_at_".
	TokenPrefix string
	// CacheTTL bounds how long an answer is reused (never past the
	// token's exp): the bound on how late a revocation is seen. Default:
	// 10 s.
	CacheTTL time.Duration
	// Client calls the endpoint. Default: a client with a 5 s timeout.
	Client *http.Client
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// RemoteIntrospector is a gatehouse.Authenticator for resource servers
// that are not the authorization server: it asks the authorization
// server's introspection endpoint about each opaque token and caches the
// answer. Safe for concurrent use.
type RemoteIntrospector struct {
	cfg   IntrospectorConfig
	cache *digestcache.Cache[introspected]
}

type introspected struct {
	p       *gatehouse.Principal // nil: inactive
	expires time.Time
}

var _ gatehouse.Authenticator = (*RemoteIntrospector)(nil)

// NewRemoteIntrospector returns an introspecting authenticator.
func NewRemoteIntrospector(cfg IntrospectorConfig) (*RemoteIntrospector, error) {
	if cfg.URL == "" || cfg.ClientID == "" {
		return nil, errors.New("oauth: IntrospectorConfig needs URL and ClientID")
	}
	if cfg.TokenPrefix == "" {
		cfg.TokenPrefix = PrefixAccessToken
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RemoteIntrospector{cfg: cfg, cache: digestcache.New[introspected](100_000)}, nil
}

// Authenticate implements gatehouse.Authenticator.
func (ri *RemoteIntrospector) Authenticate(r *http.Request) (*gatehouse.Principal, error) {
	tok, err := gatehouse.BearerToken(r, false)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(tok, ri.cfg.TokenPrefix) {
		return nil, gatehouse.ErrNoCredentials
	}
	key := digestcache.Sum(tok)
	now := ri.cfg.Now()
	e, ok := ri.cache.Get(key)
	if !ok || !now.Before(e.expires) {
		e, err = ri.ask(r, tok, now)
		if err != nil {
			return nil, apierror.Unavailable(err)
		}
		ri.cache.Put(key, e)
	}
	if e.p == nil {
		return nil, apierror.InvalidToken("The access token is not active")
	}
	return e.p, nil
}

func (ri *RemoteIntrospector) ask(r *http.Request, tok string, now time.Time) (introspected, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, ri.cfg.URL,
		strings.NewReader(url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()))
	if err != nil {
		return introspected{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(ri.cfg.ClientID), url.QueryEscape(ri.cfg.ClientSecret))
	res, err := ri.cfg.Client.Do(req)
	if err != nil {
		return introspected{}, fmt.Errorf("oauth: introspection: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return introspected{}, fmt.Errorf("oauth: introspection: status %d", res.StatusCode)
	}
	var body struct {
		Active   bool   `json:"active"`
		Sub      string `json:"sub"`
		ClientID string `json:"client_id"`
		Org      string `json:"org"`
		Scope    string `json:"scope"`
		Exp      int64  `json:"exp"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return introspected{}, fmt.Errorf("oauth: introspection: %w", err)
	}
	e := introspected{expires: now.Add(ri.cfg.CacheTTL)}
	if !body.Active {
		return e, nil
	}
	e.p = &gatehouse.Principal{Subject: body.Sub, Organisation: body.Org, ClientID: body.ClientID, Scopes: strings.Fields(body.Scope),
		Environment: gatehouse.Live, Method: gatehouse.MethodIntrospect}
	e.p.SetLimitKey()
	if body.Exp > 0 {
		exp := time.Unix(body.Exp, 0)
		e.p.ExpiresAt = exp
		if exp.Before(e.expires) {
			e.expires = exp
		}
	}
	return e, nil
}
