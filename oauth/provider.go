package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
)

// Endpoint paths served by [Provider.Handler].
const (
	PathAuthorize  = "/oauth/authorize"
	PathToken      = "/oauth/token"
	PathRevoke     = "/oauth/revoke"
	PathIntrospect = "/oauth/introspect"
	PathMetadata   = "/.well-known/oauth-authorization-server"
)

// Grant types a client may be allowed.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantImplicit          = "implicit"
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// MaxRefreshReuseGrace bounds [Config.RefreshReuseGrace]: a grace period
// is for retries, not a second lifetime for used tokens.
const MaxRefreshReuseGrace = 5 * time.Minute

// Config holds the settings of a [Provider].
type Config struct {
	// Issuer is the public base URL of the authorization server
	// ("https://auth.example.com"); required. Metadata names endpoints
	// under it.
	Issuer string
	// Secret signs tokens (HMAC-SHA-512/256) and the login and CSRF
	// cookies; at least 32 bytes, required. Keep it secret and stable:
	// changing it invalidates every token.
	Secret []byte
	// RotatedSecrets still validate tokens signed before a rotation.
	RotatedSecrets [][]byte
	// Catalog lists the scopes clients may ask for, with the descriptions
	// the consent page shows. Default: scope.DefaultCatalog().
	Catalog *scope.Catalog
	// AccessTokenLifetime, RefreshTokenLifetime, CodeLifetime default to 1
	// hour, 30 days and 10 minutes; a client may override the first two.
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	CodeLifetime         time.Duration
	// RefreshReuseGrace is how long a refresh token, once rotated, may be
	// used again by its client: a retry after a response that never
	// arrived, or a second refresh racing the first, gets a new token pair
	// instead of revoking the grant. Every refresh rotates its token, and
	// the pairs issued meanwhile stay valid. Only the grant's most recent
	// rotation has the grace: once the token that replaced it is used in
	// turn, or the grant is revoked, reuse revokes the grant as always
	// (RFC 9700 §4.14.2), as it does when another client presents the
	// token within the grace. The grace is counted from the rotation's time
	// as the rotating instance's clock read it, so instances need clocks
	// in step. Default 0: no grace; at most 5 minutes (a few seconds
	// cover retries).
	RefreshReuseGrace time.Duration
	// SecretPepper keys the hash of client secrets (HMAC-SHA-256).
	SecretPepper []byte
	// Invalidator, shared by every instance (sqlstore's on PostgreSQL),
	// carries each revocation (RFC 7009, a reused refresh token or code,
	// Disconnect) to the other instances' providers, whose resource
	// authenticators drop the grant's cached access tokens at once
	// instead of within ResourceConfig.CacheTTL. A refresh, which ends
	// the grant's earlier access token as a matter of routine, is not
	// announced: elsewhere that token lasts its CacheTTL. Default: none.
	Invalidator gatehouse.Invalidator
	// PasswordParams are the argon2id parameters for new user passwords.
	// Default: DefaultPasswordParams.
	PasswordParams PasswordParams
	// LegacyPasswords checks a password against a stored hash in a format
	// Gatehouse does not make, imported with the users of another system
	// (Django's pbkdf2_sha256, scrypt, …): it reports whether the
	// password matches, and false for a hash it does not know. argon2id
	// and bcrypt ($2a$, $2b$, $2y$) hashes verify without it. On a match
	// the hash is replaced by an argon2id one made with PasswordParams,
	// as a weaker argon2id hash is (see CheckPassword). Default: none;
	// another format never matches.
	LegacyPasswords func(hash, password string) bool
	// LoginAttempts limits failed sign-ins (password grant and login
	// page) per account. Default: 10 a minute, 50 an hour.
	LoginAttempts *ratelimit.Policy
	// LoginAttemptsPerIP limits failed sign-ins per client address.
	// Default: 30 a minute.
	LoginAttemptsPerIP *ratelimit.Policy
	// LoginLimiter counts the failed sign-ins of both limits. Default: a
	// ratelimit.Memory of this Provider's own, so each instance counts
	// alone and N instances allow N times the attempts. Several instances
	// share one count through a ratelimit.Redis (in a ratelimit.Failover,
	// which decides what happens while Redis is down). Its keys start
	// "signin:"; an account's key is a keyed hash, so no email is stored
	// in the limiter. While the limiter fails, sign-ins are refused
	// (password grant: 503 temporarily_unavailable; SignIn: an error):
	// a password is never checked without its limit.
	LoginLimiter ratelimit.Limiter
	// ClientIP returns the address a request came from, for
	// LoginAttemptsPerIP and the sign-in log. Default: the host of
	// r.RemoteAddr. Behind a reverse proxy every request comes from the
	// proxy, so the per-address limit would be one budget for all
	// clients: there, read the client from the proxy's X-Forwarded-For,
	// trusting it only from the proxy, as
	// func(r *http.Request) string { return ratelimit.ClientIP(r, proxies) }
	// does.
	ClientIP func(r *http.Request) string
	// JWTKeys, when set, makes access tokens RFC 9068 JWTs (typ at+jwt,
	// ES256) signed by the set's signing key and published at PathJWKS,
	// so other services can verify them with a JWTVerifier and no
	// database. Every instance needs the same set, and a restart the set
	// it had (see KeySet: ParseKeySet of an exported set). Default: opaque
	// tokens.
	JWTKeys *KeySet
	// JWTAudience is the aud of JWT access tokens. Default: Issuer.
	JWTAudience string
	// Login says who the user is on the authorization endpoint. Default:
	// the built-in sign-in page (organisation, email, password) with a
	// signed session cookie.
	Login LoginProvider
	// Consent may skip the consent page (for first-party applications,
	// say). Default: the page is skipped only for scopes the user already
	// allowed and asked to remember.
	Consent ConsentPolicy
	// AllowMissingState lets an authorization request without a state
	// parameter through. RFC 6749 §4.1.1 makes state RECOMMENDED and
	// fosite requires it; TidyHQ's documented authorize URLs send none,
	// so clients written against them get invalid_state without this. A
	// state that is sent must still have at least 8 characters, and is
	// returned as always. A client that sends no state has no CSRF
	// protection on its redirect unless it uses PKCE (RFC 9700 §2.1):
	// turn this on only for clients you cannot change.
	AllowMissingState bool
	// InsecureCookies lets the login cookie go over plain HTTP. Set it only
	// for development on loopback.
	InsecureCookies bool
	// Logger receives server errors and the audit of sign-ins. Default:
	// silent.
	Logger *slog.Logger
}

// Provider is an OAuth 2.0 authorization server built on fosite:
// authorization code with PKCE, implicit, resource-owner password with
// domain_prefix, client credentials, refresh with rotation and reuse
// detection, revocation (RFC 7009), introspection (RFC 7662) and metadata
// (RFC 8414). It is safe for concurrent use.
type Provider struct {
	store   Store
	cfg     Config
	fosite  fosite.OAuth2Provider
	fcfg    *fosite.Config
	hasher  SecretHasher
	log     *slog.Logger
	catalog *scope.Catalog
	cookie  []byte
	tokens  tokenCache
	fails   ratelimit.Limiter
	strat   prefixedStrategy
	// access is the access-token strategy fosite was composed with (JWT
	// or opaque).
	access oauth2.AccessTokenStrategy
	// dummyHash is checked when the account does not exist, so that an
	// unknown email costs what a wrong password costs: it is made with
	// the provider's own PasswordParams, as its users' hashes are.
	dummyHash string
	// jwtVerify checks JWT access tokens against the provider's own keys.
	jwtVerify *JWTVerifier
	// unsubscribe stops Config.Invalidator's handlers.
	unsubscribe []func()
}

// The topics of Config.Invalidator's messages: a grant's request id, a
// user's grants to one client ("CLIENT_ID SUBJECT"), and a client's id.
const (
	topicGrant      = "oauth-grant"
	topicUserClient = "oauth-user-client"
	topicClient     = "oauth-client"
)

// New returns a Provider over store.
func New(store Store, cfg Config) (*Provider, error) {
	if store == nil {
		return nil, errors.New("oauth: New needs a store")
	}
	u, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("oauth: Config.Issuer must be an absolute http(s) URL")
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if len(cfg.Secret) < 32 {
		return nil, errors.New("oauth: Config.Secret must be at least 32 bytes")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = scope.DefaultCatalog()
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = time.Hour
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = 30 * 24 * time.Hour
	}
	if cfg.CodeLifetime <= 0 {
		cfg.CodeLifetime = 10 * time.Minute
	}
	if cfg.RefreshReuseGrace < 0 || cfg.RefreshReuseGrace > MaxRefreshReuseGrace {
		return nil, fmt.Errorf("oauth: Config.RefreshReuseGrace must be between 0 and %v, not %v", MaxRefreshReuseGrace, cfg.RefreshReuseGrace)
	}
	if cfg.LoginAttempts == nil {
		p := ratelimit.MustPolicy("login-account", "10/m,50/h")
		cfg.LoginAttempts = &p
	}
	if cfg.LoginAttemptsPerIP == nil {
		p := ratelimit.MustPolicy("login-ip", "30/m")
		cfg.LoginAttemptsPerIP = &p
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return ratelimit.ClientIP(r, nil) }
	}
	p := &Provider{
		store: store, cfg: cfg, hasher: SecretHasher{Pepper: cfg.SecretPepper}, log: cfg.Logger,
		catalog: cfg.Catalog, tokens: newTokenCache(), fails: cfg.LoginLimiter,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.fails == nil {
		p.fails = ratelimit.NewMemory(ratelimit.MemoryConfig{})
	}
	if p.dummyHash, err = HashPassword("gatehouse-dummy-password", cfg.PasswordParams); err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, cfg.Secret)
	m.Write([]byte("gatehouse cookie key"))
	p.cookie = m.Sum(nil)

	secret := sha256.Sum256(cfg.Secret) // fosite uses the first 32 bytes
	var rotated [][]byte
	for _, r := range cfg.RotatedSecrets {
		s := sha256.Sum256(r)
		rotated = append(rotated, s[:])
	}
	// One fosite.Config per provider: Compose appends to it. Every lazily
	// defaulted strategy is set here, so the getters never write (and
	// race) at request time.
	p.fcfg = &fosite.Config{
		AccessTokenLifespan:            cfg.AccessTokenLifetime,
		RefreshTokenLifespan:           cfg.RefreshTokenLifetime,
		AuthorizeCodeLifespan:          cfg.CodeLifetime,
		GlobalSecret:                   secret[:],
		RotatedGlobalSecrets:           rotated,
		RefreshTokenScopes:             []string{}, // refresh tokens for every client allowed the grant
		ScopeStrategy:                  p.scopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:            p.hasher,
		JWKSFetcherStrategy:            fosite.NewDefaultJWKSFetcherStrategy(),
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		TokenURL:                       cfg.Issuer + PathToken,
		SendDebugMessagesToClients:     false,
		MinParameterEntropy:            fosite.MinParameterEntropy,
		RedirectSecureChecker:          fosite.IsRedirectURISecureStrict,
		HashCost:                       12,
	}
	fs := &fositeStore{s: store, password: p.checkPassword, grace: cfg.RefreshReuseGrace, log: p.log, revoked: p.forget}
	p.strat = newStrategy(p.fcfg)
	var strategy any = p.strat
	if cfg.JWTKeys != nil {
		if cfg.JWTKeys.SigningKeyID() == "" {
			return nil, errEmptyKeySet
		}
		if p.cfg.JWTAudience == "" {
			p.cfg.JWTAudience = cfg.Issuer
		}
		fs.audience = fosite.Arguments{p.cfg.JWTAudience}
		p.fcfg.AccessTokenIssuer = cfg.Issuer
		p.fcfg.JWTScopeClaimKey = jwt.JWTScopeFieldString // RFC 9068: "scope" as a string
		strategy = compose.NewOAuth2JWTStrategy(cfg.JWTKeys.signing, p.strat, p.fcfg)
		p.jwtVerify, _ = NewJWTVerifier(VerifierConfig{JWKSURL: "local", Issuer: cfg.Issuer, Audience: p.cfg.JWTAudience, keys: cfg.JWTKeys.JWKS})
	}
	p.access = strategy.(oauth2.AccessTokenStrategy)
	p.fosite = compose.Compose(p.fcfg, fs, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2AuthorizeImplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		//lint:ignore SA1019 the seed (TidyHQ) requires the password grant; it stays opt-in per client.
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OAuth2PKCEFactory, // after the explicit factory
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
	)
	p.listen() // last: a New that fails leaves no handler behind
	return p, nil
}

// scopeStrategy lets a client ask for a scope its registration grants,
// directly, by implication or by wildcard.
func (p *Provider) scopeStrategy(allowed []string, requested string) bool {
	return p.catalog.Satisfies(allowed, requested)
}

// Handler serves every endpoint at its default path (PathAuthorize …).
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(PathAuthorize, p.AuthorizeHandler())
	mux.Handle(PathToken, p.TokenHandler())
	mux.Handle(PathRevoke, p.RevokeHandler())
	mux.Handle(PathIntrospect, p.IntrospectHandler())
	mux.Handle(PathMetadata, p.MetadataHandler())
	if p.cfg.JWTKeys != nil {
		mux.Handle(PathJWKS, p.cfg.JWTKeys.JWKSHandler())
	}
	return mux
}

// Metadata is the RFC 8414 authorization server metadata.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
}

// Metadata returns the server's RFC 8414 metadata.
func (p *Provider) Metadata() Metadata {
	var scopes []string
	for _, s := range p.catalog.Scopes() {
		scopes = append(scopes, s.Name)
	}
	auth := []string{"client_secret_basic", "client_secret_post"}
	jwks := ""
	if p.cfg.JWTKeys != nil {
		jwks = p.cfg.Issuer + PathJWKS
	}
	return Metadata{JWKSURI: jwks,
		Issuer: p.cfg.Issuer, AuthorizationEndpoint: p.cfg.Issuer + PathAuthorize, TokenEndpoint: p.cfg.Issuer + PathToken,
		RevocationEndpoint: p.cfg.Issuer + PathRevoke, IntrospectionEndpoint: p.cfg.Issuer + PathIntrospect,
		ScopesSupported: scopes, ResponseTypesSupported: []string{"code", "token"}, ResponseModesSupported: []string{"query", "fragment"},
		GrantTypesSupported:               []string{GrantAuthorizationCode, GrantImplicit, GrantPassword, GrantClientCredentials, GrantRefreshToken},
		TokenEndpointAuthMethodsSupported: append(slices.Clone(auth), "none"),
		RevocationAuthMethodsSupported:    auth, IntrospectionAuthMethodsSupported: auth,
		CodeChallengeMethodsSupported: []string{"S256"},
	}
}

// MetadataHandler serves the metadata as JSON.
func (p *Provider) MetadataHandler() http.Handler {
	body, _ := json.Marshal(p.Metadata()) // plain strings: always marshals
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}

// ClientParams describes a client to register.
type ClientParams struct {
	OrganisationID string
	Name           string
	RedirectURIs   []string
	// Grants the client may use. Default: authorization_code and
	// refresh_token.
	Grants []string
	// Scopes the client may be granted; validated against the catalog.
	Scopes []string
	// Public clients (SPAs, native apps) get no secret and must use PKCE.
	Public bool
	// AccessTokenLifetime overrides the provider's; storage.NoExpiry
	// issues tokens that do not expire ("expires_in": null).
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
}

// FieldError names an invalid parameter.
type FieldError struct{ Field, Issue string }

func (e *FieldError) Error() string { return "oauth: " + e.Field + " " + e.Issue }

// RegisterClient validates and stores a new client. It returns the client
// secret in plain text once (empty for public clients); only its hash is
// stored.
func (p *Provider) RegisterClient(ctx context.Context, cp ClientParams) (string, *storage.Client, error) {
	if cp.OrganisationID == "" {
		return "", nil, &FieldError{"organisation", "is required"}
	}
	if len(cp.Grants) == 0 {
		cp.Grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	c := &storage.Client{
		ID: storage.NewID(), OrganisationID: cp.OrganisationID, Public: cp.Public,
		AccessTokenLifetime: cp.AccessTokenLifetime, RefreshTokenLifetime: cp.RefreshTokenLifetime, CreatedAt: time.Now().UTC(),
	}
	if err := p.setClient(c, cp.Name, cp.RedirectURIs, cp.Scopes, cp.Grants); err != nil {
		return "", nil, err
	}
	var secret string
	if !cp.Public {
		secret = GenerateSecret()
		c.SecretHash = p.hasher.sum([]byte(secret))
	}
	if err := p.store.CreateClient(ctx, c); err != nil {
		return "", nil, fmt.Errorf("oauth: register client: %w", err)
	}
	p.log.Info("oauth client registered", "client_id", c.ID, "organisation", c.OrganisationID, "public", c.Public)
	return secret, c, nil
}

// setClient checks a client's name, redirect URIs, scopes and grants, as
// RegisterClient and UpdateClient take them, and sets them on c (whose
// Public it reads).
func (p *Provider) setClient(c *storage.Client, name string, redirectURIs, scopes, grants []string) error {
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return &FieldError{"name", "is required (at most 200 characters)"}
	}
	if !storage.ValidText(name) {
		return &FieldError{"name", storage.TextIssue}
	}
	if len(grants) == 0 {
		return &FieldError{"grants", "at least one is required"}
	}
	var responses []string
	for _, g := range grants {
		switch g {
		case GrantAuthorizationCode:
			responses = append(responses, "code")
		case GrantImplicit:
			responses = append(responses, "token")
		case GrantPassword, GrantClientCredentials, GrantRefreshToken:
		default:
			return &FieldError{"grants", fmt.Sprintf("%q is not a supported grant", g)}
		}
		if c.Public && (g == GrantClientCredentials || g == GrantPassword) {
			return &FieldError{"grants", g + " needs a confidential client"}
		}
	}
	if len(responses) > 0 && len(redirectURIs) == 0 {
		return &FieldError{"redirect_uris", "at least one is required for the authorization code and implicit grants"}
	}
	for _, ru := range redirectURIs {
		if issue := checkRedirectURI(ru); issue != "" {
			return &FieldError{"redirect_uris", issue}
		}
	}
	set, err := scope.NewSet(scopes...)
	if err == nil {
		err = p.catalog.Check(set)
	}
	if err != nil {
		return &FieldError{"scopes", scope.Issue(err)}
	}
	c.Name, c.RedirectURIs, c.Scopes = name, slices.Clone(redirectURIs), set
	c.GrantTypes, c.ResponseTypes = slices.Clone(grants), responses
	if slices.Contains(grants, GrantImplicit) {
		// fosite's implicit handler wants "token" among the client's
		// grant types too.
		c.GrantTypes = append(c.GrantTypes, "token")
	}
	return nil
}

// ClientUpdate changes an application; nil fields are left as they are.
type ClientUpdate struct {
	Name         *string
	RedirectURIs []string
	// Scopes replaces what the application may be granted.
	Scopes []string
	// Grants replaces the grants it may use (GrantAuthorizationCode …).
	Grants []string
}

// UpdateClient changes an application's name, redirect URIs, scopes or
// grants, checked as RegisterClient checks them (a public client stays
// public; its secret and lifetimes are not changed here). Invalid fields
// are a *FieldError; a missing client wraps storage.ErrNotFound.
//
// What is removed stops at once. A scope taken away stops being held by
// the tokens already issued, here and, through Config.Invalidator, on the
// other instances (within ResourceConfig.CacheTTL without one), and in
// what introspection reports; a refresh of a grant that holds it is
// refused invalid_scope, so that the user authorizes the application
// again, for what it may now ask. A grant taken away can no longer be
// used to obtain tokens, nor a redirect URI in a new authorization (a
// code already issued to it is exchanged within its lifetime). Scopes
// added are for new authorizations: existing grants keep what their users
// allowed.
func (p *Provider) UpdateClient(ctx context.Context, clientID string, u ClientUpdate) (*storage.Client, error) {
	var c *storage.Client
	var narrowed bool
	// Conditional on the version read, as RotateClientSecret.
	err := storage.RetryOnConflict(func() error {
		var err error
		if c, err = p.store.GetClient(ctx, clientID); err != nil {
			return err
		}
		name, redirects, scopes, grants := c.Name, c.RedirectURIs, []string(c.Scopes), Grants(c)
		if u.Name != nil {
			name = *u.Name
		}
		if u.RedirectURIs != nil {
			redirects = u.RedirectURIs
		}
		if u.Scopes != nil {
			scopes = u.Scopes
		}
		if u.Grants != nil {
			grants = u.Grants
		}
		before := slices.Clone(c.Scopes)
		if err := p.setClient(c, name, redirects, scopes, grants); err != nil {
			return err
		}
		narrowed = len(p.stillAllowed(before, c.Scopes)) < len(before)
		return p.store.UpdateClient(ctx, c)
	})
	if fe := (*FieldError)(nil); errors.As(err, &fe) {
		return nil, fe
	}
	if err != nil {
		return nil, fmt.Errorf("oauth: update client: %w", err)
	}
	if narrowed {
		// Cached principals hold the scopes they were granted: they are
		// worked out again, with the client as it now is.
		p.dropClient(c.ID)
		p.broadcast(ctx, topicClient, c.ID)
	}
	p.log.Info("oauth client updated", "client_id", c.ID, "scopes", c.Scopes, "grants", c.GrantTypes, "scopes_removed", narrowed)
	return c, nil
}

// Grants returns the grants a client may use, as ClientParams and
// ClientUpdate name them: its grant types without the "token" that
// fosite needs beside the implicit grant.
func Grants(c *storage.Client) []string {
	return slices.DeleteFunc(slices.Clone(c.GrantTypes), func(g string) bool { return g == "token" })
}

// stillAllowed returns the scopes of granted that an application allowed
// clientScopes may hold: all of them, unless UpdateClient took some away.
func (p *Provider) stillAllowed(granted, clientScopes []string) []string {
	out := make([]string, 0, len(granted))
	for _, s := range granted {
		if p.scopeStrategy(clientScopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// RotateClientSecret gives a confidential client a new secret, returned
// in plain text once, and keeps its current one working for grace, so
// that its deployments can move to the new secret one by one (zero or
// less: the current secret stops at once). Only one previous secret is
// kept: rotating again ends the grace of the one before. Tokens already
// issued stay valid. storage.ErrNotFound when there is no such client.
func (p *Provider) RotateClientSecret(ctx context.Context, clientID string, grace time.Duration) (string, *storage.Client, error) {
	secret := GenerateSecret()
	var c *storage.Client
	// Conditional on the version read (storage.Clients.UpdateClient): a
	// rotation or change made meanwhile, on any instance, is read again
	// and kept, not overwritten.
	err := storage.RetryOnConflict(func() error {
		var err error
		if c, err = p.store.GetClient(ctx, clientID); err != nil {
			return err
		}
		if c.Public {
			return &FieldError{"client", "is public: it has no secret to rotate"}
		}
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = "", time.Time{}
		if grace > 0 {
			c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, time.Now().Add(grace).UTC()
		}
		c.SecretHash = p.hasher.sum([]byte(secret))
		return p.store.UpdateClient(ctx, c)
	})
	if fe := (*FieldError)(nil); errors.As(err, &fe) {
		return "", nil, fe
	}
	if err != nil {
		return "", nil, fmt.Errorf("oauth: rotate client secret: %w", err)
	}
	p.log.Info("oauth client secret rotated", "client_id", c.ID, "previous_valid_until", c.PreviousSecretExpiresAt)
	return secret, c, nil
}

// checkRedirectURI accepts absolute https URIs, and http only on loopback
// (RFC 8252), without fragments or userinfo.
func checkRedirectURI(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case !storage.ValidText(raw):
		return fmt.Sprintf("%q %s", raw, storage.TextIssue)
	case err != nil || !u.IsAbs() || u.Host == "":
		return fmt.Sprintf("%q is not an absolute URL", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Sprintf("%q must not have a fragment", raw)
	case u.User != nil:
		return fmt.Sprintf("%q must not carry user information", raw)
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return ""
	}
	return fmt.Sprintf("%q must use https (http is allowed only on loopback)", raw)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

// UserParams describes a user to create.
type UserParams struct {
	OrganisationID string
	Email          string
	// Password is the user's password; or, for a user imported from
	// another system, PasswordHash is its hash as that system stored it
	// (bcrypt, argon2id, or a format Config.LegacyPasswords checks),
	// replaced by an argon2id hash at the user's first sign-in. One of
	// the two, not both.
	Password            string
	PasswordHash        string
	FirstName, LastName string
}

// CreateUser stores a user with an argon2id hash of the password, or
// with the imported hash it is given.
func (p *Provider) CreateUser(ctx context.Context, up UserParams) (*storage.User, error) {
	if up.OrganisationID == "" {
		return nil, &FieldError{"organisation", "is required"}
	}
	if !strings.Contains(up.Email, "@") || len(up.Email) > 254 || !storage.ValidText(up.Email) {
		return nil, &FieldError{"email", "must be an email address"}
	}
	for _, f := range [...][2]string{{"first_name", up.FirstName}, {"last_name", up.LastName}} {
		if !storage.ValidText(f[1]) {
			return nil, &FieldError{f[0], storage.TextIssue}
		}
	}
	hash, err := p.newUserHash(up.Password, up.PasswordHash)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	u := &storage.User{ID: storage.NewID(), OrganisationID: up.OrganisationID, Email: strings.TrimSpace(up.Email), PasswordHash: hash,
		FirstName: up.FirstName, LastName: up.LastName, CreatedAt: now, UpdatedAt: now}
	if err := p.store.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("oauth: create user: %w", err)
	}
	return u, nil
}

// newUserHash is the hash a new user is stored with: of password, or the
// imported hash as it is.
func (p *Provider) newUserHash(password, imported string) (string, error) {
	switch {
	case imported != "" && password != "":
		return "", &FieldError{"password_hash", "give a password or its hash, not both"}
	case imported != "":
		if len(imported) > 1024 || !storage.ValidText(imported) || strings.ContainsAny(imported, " \t\r\n") {
			return "", &FieldError{"password_hash", "must be an encoded password hash: at most 1024 characters, no spaces"}
		}
		if !strings.HasPrefix(imported, "$argon2id$") && !isBcrypt(imported) && p.cfg.LegacyPasswords == nil {
			return "", &FieldError{"password_hash", "must be an argon2id or bcrypt hash, or a format Config.LegacyPasswords checks"}
		}
		return imported, nil
	}
	if err := checkNewPassword(password); err != nil {
		return "", err
	}
	return HashPassword(password, p.cfg.PasswordParams)
}

// SetPassword gives a user a new password, hashed with the provider's
// PasswordParams, and ends every sign-in session of theirs
// (SignOutEverywhere), so that a session opened with the old password
// does not outlive it. Tokens already issued to applications stay valid:
// Disconnect ends an application's. A password of fewer than 8 or more
// than 1024 characters is a *FieldError; an unknown user wraps
// storage.ErrNotFound.
func (p *Provider) SetPassword(ctx context.Context, userID, password string) error {
	if err := checkNewPassword(password); err != nil {
		return err
	}
	if err := p.storePassword(ctx, userID, "", password); err != nil {
		return fmt.Errorf("oauth: set password: %w", err)
	}
	if _, err := p.SignOutEverywhere(ctx, userID); err != nil {
		return fmt.Errorf("oauth: set password: the password changed but the sessions did not end: %w", err)
	}
	return nil
}

// storePassword saves a hash of password made with the provider's
// PasswordParams as the user's, and nothing else of the user; with
// current not empty, only while the stored hash is still current
// (storage.Users.SetPasswordHash).
func (p *Provider) storePassword(ctx context.Context, userID, current, password string) error {
	hash, err := HashPassword(password, p.cfg.PasswordParams)
	if err != nil {
		return err
	}
	return p.store.SetPasswordHash(ctx, userID, current, hash, time.Now().UTC())
}

// checkNewPassword is the rule for a password a user is given.
func checkNewPassword(password string) error {
	if len(password) < 8 || len(password) > 1024 {
		return &FieldError{"password", "must be 8 to 1024 characters"}
	}
	return nil
}

// listen subscribes the provider's token cache to Config.Invalidator.
func (p *Provider) listen() {
	inv := p.cfg.Invalidator
	if inv == nil {
		return
	}
	all := func() { p.tokens.DeleteFunc(func(*tokenEntry) bool { return true }) }
	p.unsubscribe = append(p.unsubscribe,
		inv.OnInvalidate(topicGrant, func(id string) {
			if id == "" { // messages may have been missed
				all()
				return
			}
			p.tokens.dropRequest(id)
		}),
		inv.OnInvalidate(topicUserClient, func(key string) {
			clientID, subject, ok := strings.Cut(key, " ")
			if !ok {
				all()
				return
			}
			p.dropGrantsOf(subject, clientID)
		}),
		inv.OnInvalidate(topicClient, func(id string) {
			if id == "" {
				all()
				return
			}
			p.dropClient(id)
		}))
}

// dropClient drops the cached access tokens of a client.
func (p *Provider) dropClient(clientID string) {
	p.tokens.DeleteFunc(func(e *tokenEntry) bool { return e.principal.ClientID == clientID })
}

// DeleteClient deletes an application: its access tokens stop working at
// once, here and, through Config.Invalidator, on the other instances
// (within ResourceConfig.CacheTTL without one), and its refresh tokens
// and codes can no longer be exchanged, since the client is gone. A
// missing client wraps storage.ErrNotFound.
func (p *Provider) DeleteClient(ctx context.Context, clientID string) error {
	if err := p.store.DeleteClient(ctx, clientID); err != nil {
		return fmt.Errorf("oauth: delete client: %w", err)
	}
	p.dropClient(clientID)
	p.broadcast(ctx, topicClient, clientID)
	p.log.Info("oauth client deleted", "client_id", clientID)
	return nil
}

// Close stops listening to Config.Invalidator. The provider keeps
// serving; its cache then honours other instances' revocations within
// ResourceConfig.CacheTTL.
func (p *Provider) Close() {
	for _, stop := range p.unsubscribe {
		stop()
	}
	p.unsubscribe = nil
}

// forget drops a grant's cached access tokens on every instance: here at
// once, elsewhere through Config.Invalidator.
func (p *Provider) forget(ctx context.Context, requestID string) {
	p.tokens.dropRequest(requestID)
	p.broadcast(ctx, topicGrant, requestID)
}

// dropGrantsOf drops the cached access tokens subject granted clientID.
func (p *Provider) dropGrantsOf(subject, clientID string) {
	p.tokens.DeleteFunc(func(e *tokenEntry) bool {
		return e.principal.Subject == subject && e.principal.ClientID == clientID
	})
}

// broadcast sends one invalidation; a failure leaves the other instances
// to their cache TTL, and is logged.
func (p *Provider) broadcast(ctx context.Context, topic, key string) {
	if p.cfg.Invalidator == nil {
		return
	}
	if err := p.cfg.Invalidator.Invalidate(context.WithoutCancel(ctx), topic, key); err != nil {
		p.log.Warn("telling other instances of a revocation failed; they honour it within the cache TTL", "topic", topic, "err", err)
	}
}
