package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite/token/jwt"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// PathJWKS is where [Provider.Handler] publishes the public keys of JWT
// access tokens.
const PathJWKS = "/.well-known/jwks.json"

// KeySet is a rotating set of ES256 signing keys for JWT access tokens. The
// newest key signs; older keys stay published (so tokens they signed keep
// verifying) until removed. Safe for concurrent use.
type KeySet struct {
	mu   sync.RWMutex
	keys []*ecdsa.PrivateKey
	ids  []string
}

// NewKeySet returns a set with one fresh key.
func NewKeySet() (*KeySet, error) {
	ks := &KeySet{}
	_, err := ks.Rotate()
	return ks, err
}

// Rotate adds a new signing key and returns its key id; the previous keys
// keep verifying.
func (ks *KeySet) Rotate() (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ks.mu.Lock()
	ks.keys, ks.ids = append(ks.keys, k), append(ks.ids, id)
	ks.mu.Unlock()
	return id, nil
}

// Remove stops publishing (and so verifying) the key with id. The signing
// key cannot be removed; rotate first.
func (ks *KeySet) Remove(id string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i := slices.Index(ks.ids, id)
	switch {
	case i < 0:
		return fmt.Errorf("oauth: no key %q", id)
	case i == len(ks.ids)-1:
		return errors.New("oauth: the signing key cannot be removed; rotate first")
	}
	ks.keys, ks.ids = slices.Delete(ks.keys, i, i+1), slices.Delete(ks.ids, i, i+1)
	return nil
}

// signing returns the current key as fosite's signer wants it.
func (ks *KeySet) signing(context.Context) (any, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	n := len(ks.keys) - 1
	return &josev3.JSONWebKey{Key: ks.keys[n], KeyID: ks.ids[n], Algorithm: string(josev3.ES256), Use: "sig"}, nil
}

// JWKS returns the public keys as a JSON Web Key Set.
func (ks *KeySet) JWKS() jose.JSONWebKeySet {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var set jose.JSONWebKeySet
	for i, k := range ks.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: ks.ids[i], Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set
}

// JWKSHandler serves the key set.
func (ks *KeySet) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(ks.JWKS())
	})
}

// GetJWTClaims implements fosite's JWT session contract: RFC 9068 claims
// (sub, client_id, and Gatehouse's org).
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	return &jwt.JWTClaims{Subject: s.Subject, Extra: map[string]any{"client_id": s.ClientID, "org": s.Organisation}}
}

// GetJWTHeader marks the token as an RFC 9068 access token.
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
}

// looksLikeJWT reports whether a bearer credential has the shape of a JWS.
func looksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

// Claims are the verified claims of a JWT access token.
type Claims struct {
	Subject      string
	ClientID     string
	Organisation string
	Scopes       []string
	Issuer       string
	Audience     []string
	Expiry       time.Time
	IssuedAt     time.Time
	ID           string
}

// VerifierConfig configures a [JWTVerifier].
type VerifierConfig struct {
	// JWKSURL is where the authorization server publishes its keys;
	// required.
	JWKSURL string
	// Issuer is the expected iss; required.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// CacheTTL is how long fetched keys are used before refetching.
	// Default: 5 minutes. An unknown kid refetches at most once every
	// MinRefresh (default 10 s), so a key rotation is picked up at once
	// and a flood of forged kids costs nothing.
	CacheTTL   time.Duration
	MinRefresh time.Duration
	// Leeway tolerates clock skew on exp and iat. Default: 30 s.
	Leeway time.Duration
	// Client fetches the key set. Default: a client with a 10 s timeout.
	Client *http.Client
	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// keys, for the provider's own verifier, reads the key set directly.
	keys func() jose.JSONWebKeySet
}

// JWTVerifier checks JWT access tokens without a database: signature
// against the published keys (ES256 or RS256 only), typ at+jwt, iss, aud,
// exp and iat. It implements gatehouse.Authenticator for resource
// servers that are not the authorization server. A revoked JWT stays
// valid here until it expires: keep access-token lifetimes short when
// relying on it. Safe for concurrent use.
type JWTVerifier struct {
	cfg VerifierConfig

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
	tried   time.Time
}

var _ gatehouse.Authenticator = (*JWTVerifier)(nil)

// NewJWTVerifier returns a verifier.
func NewJWTVerifier(cfg VerifierConfig) (*JWTVerifier, error) {
	if cfg.JWKSURL == "" || cfg.Issuer == "" {
		return nil, errors.New("oauth: VerifierConfig needs JWKSURL and Issuer")
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = 10 * time.Second
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &JWTVerifier{cfg: cfg}, nil
}

// ErrTokenInvalid is wrapped by every verification failure.
var ErrTokenInvalid = errors.New("oauth: invalid JWT access token")

// tokenError is a verification failure: reason is a fixed phrase that
// may be shown to the client, cause the detail (go-jose's words, the key
// id the token named) that only logs and the caller's error see.
type tokenError struct {
	reason string
	cause  error
}

func invalidJWT(reason string, cause error) error { return &tokenError{reason: reason, cause: cause} }

func (e *tokenError) Error() string {
	if e.cause == nil {
		return ErrTokenInvalid.Error() + ": " + e.reason
	}
	return ErrTokenInvalid.Error() + ": " + e.reason + ": " + e.cause.Error()
}

func (e *tokenError) Is(target error) bool { return target == ErrTokenInvalid }
func (e *tokenError) Unwrap() error        { return e.cause }

// jwtRefusal is the API's answer to a failed verification: a 401 that
// says which check failed in the verifier's own words, never the JOSE
// library's or anything the token itself carried; a failure to fetch the
// keys is the server's, a 503.
func jwtRefusal(err error) error {
	var te *tokenError
	if errors.As(err, &te) {
		return apierror.InvalidToken("The access token is not valid: " + te.reason)
	}
	return apierror.Unavailable(err)
}

// claimsRefusal names the registered claim that failed go-jose's
// validation.
func claimsRefusal(err error) error {
	switch {
	case errors.Is(err, josejwt.ErrExpired):
		return invalidJWT("it has expired", err)
	case errors.Is(err, josejwt.ErrNotValidYet), errors.Is(err, josejwt.ErrIssuedInTheFuture):
		return invalidJWT("it is not valid yet", err)
	case errors.Is(err, josejwt.ErrInvalidIssuer):
		return invalidJWT("it is from another issuer", err)
	case errors.Is(err, josejwt.ErrInvalidAudience):
		return invalidJWT("it is meant for another audience", err)
	}
	return invalidJWT("its claims do not validate", err)
}

func (v *JWTVerifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if v.cfg.keys != nil {
		set := v.cfg.keys()
		if ks := set.Key(kid); len(ks) > 0 {
			return &ks[0], nil
		}
		return nil, invalidJWT("it is signed with an unknown key", fmt.Errorf("key id %q", kid))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	find := func() *jose.JSONWebKey {
		if ks := v.keys.Key(kid); len(ks) > 0 {
			return &ks[0]
		}
		return nil
	}
	if k := find(); k != nil && now.Sub(v.fetched) < v.cfg.CacheTTL {
		return k, nil
	}
	if now.Sub(v.tried) >= v.cfg.MinRefresh || now.Sub(v.fetched) >= v.cfg.CacheTTL {
		v.tried = now
		if err := v.fetch(ctx); err != nil {
			if k := find(); k != nil {
				return k, nil // keep serving from the stale set
			}
			return nil, err
		}
		v.fetched = now
	}
	if k := find(); k != nil {
		return k, nil
	}
	return nil, invalidJWT("it is signed with an unknown key", fmt.Errorf("key id %q", kid))
}

func (v *JWTVerifier) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	res, err := v.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("oauth: fetching JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("oauth: fetching JWKS: status %d", res.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("oauth: decoding JWKS: %w", err)
	}
	v.keys = set
	return nil
}

// Verify checks a JWT access token and returns its claims.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	tok, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return nil, invalidJWT("it is not a JWS signed with ES256 or RS256", err)
	}
	if len(tok.Headers) != 1 || !strings.EqualFold(fmt.Sprint(tok.Headers[0].ExtraHeaders["typ"]), "at+jwt") {
		return nil, invalidJWT("its typ is not at+jwt", nil)
	}
	k, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var std josejwt.Claims
	var extra struct {
		ClientID string `json:"client_id"`
		Org      string `json:"org"`
		Scope    string `json:"scope"`
	}
	if err := tok.Claims(k.Key, &std, &extra); err != nil {
		return nil, invalidJWT("its signature does not verify", err)
	}
	exp := josejwt.Expected{Issuer: v.cfg.Issuer, Time: v.cfg.Now()}
	if v.cfg.Audience != "" {
		exp.AnyAudience = josejwt.Audience{v.cfg.Audience}
	}
	if err := std.ValidateWithLeeway(exp, v.cfg.Leeway); err != nil {
		return nil, claimsRefusal(err)
	}
	if std.Expiry == nil {
		return nil, invalidJWT("it has no exp", nil)
	}
	c := &Claims{Subject: std.Subject, ClientID: extra.ClientID, Organisation: extra.Org, Scopes: strings.Fields(extra.Scope),
		Issuer: std.Issuer, Audience: std.Audience, Expiry: std.Expiry.Time(), ID: std.ID}
	if std.IssuedAt != nil {
		c.IssuedAt = std.IssuedAt.Time()
	}
	return c, nil
}

// Authenticate implements gatehouse.Authenticator: bearer credentials that
// are not JWTs are declined.
func (v *JWTVerifier) Authenticate(r *http.Request) (*gatehouse.Principal, error) {
	tok, err := gatehouse.BearerToken(r, false)
	if err != nil {
		return nil, err
	}
	if !looksLikeJWT(tok) {
		return nil, gatehouse.ErrNoCredentials
	}
	c, err := v.Verify(r.Context(), tok)
	if err != nil {
		return nil, jwtRefusal(err)
	}
	return &gatehouse.Principal{Subject: c.Subject, Organisation: c.Organisation, ClientID: c.ClientID, Scopes: c.Scopes,
		Environment: gatehouse.Live, Method: gatehouse.MethodJWT, ExpiresAt: c.Expiry}, nil
}
