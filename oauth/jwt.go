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
	"log/slog"
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

// KeySet is a rotating set of ES256 signing keys for JWT access tokens.
// One key signs; every key in the set is published (so tokens the older
// ones signed keep verifying, and verifiers learn a staged key before it
// signs) until removed. Safe for concurrent use.
//
// Every instance of a deployment must hold the same set, and a restarted
// instance the set it had: a token signed by a key another instance
// does not publish is refused there, and [JWTVerifier]s that fetch the
// key set from a load balancer see keys come and go. Create the set once,
// keep [KeySet.Export]'s output where the deployment keeps its secrets,
// and give each instance [ParseKeySet] of it. To rotate without refusing
// a token anywhere: [KeySet.Stage] a key, roll the exported set out to
// every instance, wait for verifiers' caches (the JWKS is served with
// max-age 300), then [KeySet.Promote] it and roll out again.
//
// A KeySet prints and logs as its key ids only; its private keys leave it
// only through Export.
type KeySet struct {
	mu     sync.RWMutex
	keys   []*ecdsa.PrivateKey
	ids    []string
	signer int // index of the signing key
}

// NewKeySet returns a set with one fresh key.
func NewKeySet() (*KeySet, error) {
	ks := &KeySet{}
	_, err := ks.Rotate()
	return ks, err
}

// Rotate adds a new key that signs from now on and returns its key id;
// the previous keys keep verifying. On a deployment of several instances,
// Stage and then Promote instead.
func (ks *KeySet) Rotate() (string, error) {
	id, err := ks.Stage()
	if err != nil {
		return "", err
	}
	return id, ks.Promote(id)
}

// Stage adds a new key that is published but does not sign yet, and
// returns its key id: see [KeySet.Promote].
func (ks *KeySet) Stage() (string, error) {
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

// Promote makes the key with id, already in the set, the signing key.
func (ks *KeySet) Promote(id string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i := slices.Index(ks.ids, id)
	if i < 0 {
		return fmt.Errorf("oauth: no key %q", id)
	}
	ks.signer = i
	return nil
}

// SigningKeyID returns the id of the key that signs ("" for a KeySet
// that is not from NewKeySet or ParseKeySet).
func (ks *KeySet) SigningKeyID() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.signingID()
}

func (ks *KeySet) signingID() string {
	if len(ks.ids) == 0 {
		return ""
	}
	return ks.ids[ks.signer]
}

// Remove stops publishing (and so verifying) the key with id: its tokens
// are refused, except where an Authenticator validated one within its
// ResourceConfig.CacheTTL. The signing key cannot be removed; rotate
// first.
func (ks *KeySet) Remove(id string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i := slices.Index(ks.ids, id)
	switch {
	case i < 0:
		return fmt.Errorf("oauth: no key %q", id)
	case i == ks.signer:
		return errors.New("oauth: the signing key cannot be removed; rotate first")
	}
	ks.keys, ks.ids = slices.Delete(ks.keys, i, i+1), slices.Delete(ks.ids, i, i+1)
	if i < ks.signer {
		ks.signer--
	}
	return nil
}

// String lists the key ids, never the keys.
func (ks *KeySet) String() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return "oauth.KeySet{signing: " + ks.signingID() + ", keys: " + strings.Join(ks.ids, " ") + "}"
}

// GoString is String, so that %#v prints no private key either.
func (ks *KeySet) GoString() string { return ks.String() }

// LogValue logs the key ids, never the keys.
func (ks *KeySet) LogValue() slog.Value {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return slog.GroupValue(slog.String("signing", ks.signingID()), slog.Any("keys", slices.Clone(ks.ids)))
}

// exportedKeySet is Export's format: a JWK Set (RFC 7517) of private
// keys, with the signing key's id as an extra member, which a reader
// that does not know it ignores (§5).
type exportedKeySet struct {
	Keys       []json.RawMessage `json:"keys"`
	SigningKID string            `json:"signing_kid"`
}

// Export returns the set with its private keys, for ParseKeySet: a JWK
// Set (RFC 7517) of the ES256 keys, oldest first, and "signing_kid"
// naming the key that signs. It is a secret: keep it as the deployment
// keeps its other secrets, never in a log.
func (ks *KeySet) Export() ([]byte, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if len(ks.keys) == 0 {
		return nil, errEmptyKeySet
	}
	out := exportedKeySet{SigningKID: ks.ids[ks.signer]}
	for i, k := range ks.keys {
		b, err := jose.JSONWebKey{Key: k, KeyID: ks.ids[i], Algorithm: string(jose.ES256), Use: "sig"}.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("oauth: exporting key %q: %w", ks.ids[i], err)
		}
		out.Keys = append(out.Keys, b)
	}
	return json.Marshal(out)
}

var errEmptyKeySet = errors.New("oauth: the key set has no keys; make one with NewKeySet or ParseKeySet")

// maxKeys bounds a parsed set: a few keys are live at a time.
const maxKeys = 100

// ParseKeySet reads a set written by [KeySet.Export]: a JWK Set of
// P-256 private keys, each with a unique kid (alg ES256 and use sig when
// given), and an optional "signing_kid" (default: the last key). Every
// error names what is wrong, and no error carries key material.
func ParseKeySet(data []byte) (*KeySet, error) {
	var in exportedKeySet
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, errors.New("oauth: a key set must be a JSON object with a \"keys\" array")
	}
	if len(in.Keys) == 0 {
		return nil, errors.New("oauth: the key set has no keys")
	}
	if len(in.Keys) > maxKeys {
		return nil, fmt.Errorf("oauth: the key set has %d keys; at most %d", len(in.Keys), maxKeys)
	}
	ks := &KeySet{signer: len(in.Keys) - 1}
	for i, raw := range in.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("oauth: key %d of the set is not a JWK", i)
		}
		pk, ok := k.Key.(*ecdsa.PrivateKey)
		switch {
		case !ok:
			return nil, fmt.Errorf("oauth: key %d of the set is not an EC private key", i)
		case pk.Curve != elliptic.P256():
			return nil, fmt.Errorf("oauth: key %d of the set is not on P-256 (ES256)", i)
		case k.KeyID == "":
			return nil, fmt.Errorf("oauth: key %d of the set has no kid", i)
		case len(k.KeyID) > 128:
			return nil, fmt.Errorf("oauth: key %d of the set has a kid of more than 128 bytes", i)
		case k.Algorithm != "" && k.Algorithm != string(jose.ES256):
			return nil, fmt.Errorf("oauth: key %q is for %s; only ES256 keys sign access tokens", k.KeyID, k.Algorithm)
		case k.Use != "" && k.Use != "sig":
			return nil, fmt.Errorf("oauth: key %q has use %q; it must be sig", k.KeyID, k.Use)
		case slices.Contains(ks.ids, k.KeyID):
			return nil, fmt.Errorf("oauth: the key set has kid %q twice", k.KeyID)
		case !publicMatches(pk):
			return nil, fmt.Errorf("oauth: key %q: its x and y are not the public key of its d", k.KeyID)
		}
		ks.keys, ks.ids = append(ks.keys, pk), append(ks.ids, k.KeyID)
	}
	if in.SigningKID != "" {
		ks.signer = slices.Index(ks.ids, in.SigningKID)
		if ks.signer < 0 {
			return nil, fmt.Errorf("oauth: signing_kid %q is not a key of the set", in.SigningKID)
		}
	}
	return ks, nil
}

// publicMatches reports whether pk's public point is d·G: a JWK whose x
// and y belong to another key would sign tokens that its own published
// key refuses.
func publicMatches(pk *ecdsa.PrivateKey) bool {
	priv, err := pk.ECDH()
	if err != nil {
		return false
	}
	pub, err := pk.PublicKey.ECDH()
	if err != nil {
		return false
	}
	return priv.PublicKey().Equal(pub)
}

// signing returns the current key as fosite's signer wants it.
func (ks *KeySet) signing(context.Context) (any, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return &josev3.JSONWebKey{Key: ks.keys[ks.signer], KeyID: ks.ids[ks.signer], Algorithm: string(josev3.ES256), Use: "sig"}, nil
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
