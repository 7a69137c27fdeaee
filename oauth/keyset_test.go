package oauth_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// jwtInstance is one instance of a deployment issuing JWT access tokens:
// a Provider over the shared store, serving its token and JWKS endpoints
// and an API behind its Authenticator.
type jwtInstance struct {
	srv *httptest.Server
}

func newJWTInstance(t *testing.T, s *memory.Store, issuer string, keys *oauth.KeySet) *jwtInstance {
	t.Helper()
	p, err := oauth.New(s, oauth.Config{Issuer: issuer, Secret: []byte("one secret for every instance, 32+ bytes"), JWTKeys: keys})
	require.NoError(t, err)
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/", p.Handler())
	mux.Handle("/api", chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	in := &jwtInstance{srv: httptest.NewServer(mux)}
	t.Cleanup(in.srv.Close)
	return in
}

func (in *jwtInstance) token(t *testing.T, id, secret string) string {
	t.Helper()
	res, err := http.PostForm(in.srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	require.NoError(t, err)
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.Equal(t, 200, res.StatusCode)
	return body.AccessToken
}

func (in *jwtInstance) api(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", in.srv.URL+"/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

func (in *jwtInstance) jwks(t *testing.T) string {
	t.Helper()
	res, err := http.Get(in.srv.URL + oauth.PathJWKS)
	require.NoError(t, err)
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return b.String()
}

func kidOf(t *testing.T, jws string) string {
	t.Helper()
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
	}
	require.NoError(t, json.Unmarshal(hdr, &h))
	return h.Kid
}

// TestKeySetSharedByInstances: instances given ParseKeySet of one
// exported set accept each other's JWT access tokens and publish the same
// JWKS; so does an instance restarted with it. An instance with a set of
// its own refuses them: what happens without the export.
func TestKeySetSharedByInstances(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keys, err := oauth.NewKeySet()
	require.NoError(t, err)
	exported, err := keys.Export()
	require.NoError(t, err)
	parse := func() *oauth.KeySet {
		ks, err := oauth.ParseKeySet(exported)
		require.NoError(t, err)
		return ks
	}
	s := memory.New()
	const issuer = "https://auth.example.com"
	a, b := newJWTInstance(t, s, issuer, parse()), newJWTInstance(t, s, issuer, parse())
	setup, err := oauth.New(s, oauth.Config{Issuer: issuer, Secret: make([]byte, 32)})
	require.NoError(t, err)
	require.NoError(t, s.CreateOrganisation(ctx, &storage.Organisation{ID: "o", DomainPrefix: "o", Name: "O", CreatedAt: time.Now()}))
	secret, c, err := setup.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "o", Name: "svc", Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{"staff:read"}})
	require.NoError(t, err)

	fromA := a.token(t, c.ID, secret)
	assert.Equal(t, keys.SigningKeyID(), kidOf(t, fromA))
	assert.Equal(t, 200, a.api(t, fromA))
	assert.Equal(t, 200, b.api(t, fromA), "a token from A works on B")
	assert.Equal(t, 200, a.api(t, b.token(t, c.ID, secret)), "and one from B on A")
	assert.JSONEq(t, a.jwks(t), b.jwks(t), "both publish the same keys")
	assert.NotContains(t, a.jwks(t), `"d"`, "the JWKS has no private key")

	restarted := newJWTInstance(t, s, issuer, parse())
	assert.Equal(t, 200, restarted.api(t, fromA), "a restarted instance still accepts the token")

	own, err := oauth.NewKeySet()
	require.NoError(t, err)
	assert.Equal(t, 401, newJWTInstance(t, s, issuer, own).api(t, fromA), "an instance with keys of its own refuses it")
}

// TestKeySetStagedRotation: a staged key is published (and survives an
// export) without signing; promoted, it signs, and tokens of the old key
// verify until that key is removed.
func TestKeySetStagedRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keys, err := oauth.NewKeySet()
	require.NoError(t, err)
	old := keys.SigningKeyID()
	s := memory.New()
	in := newJWTInstance(t, s, "https://auth.example.com", keys)
	setup, err := oauth.New(s, oauth.Config{Issuer: "https://auth.example.com", Secret: make([]byte, 32)})
	require.NoError(t, err)
	require.NoError(t, s.CreateOrganisation(ctx, &storage.Organisation{ID: "o", DomainPrefix: "o", Name: "O", CreatedAt: time.Now()}))
	secret, c, err := setup.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "o", Name: "svc", Grants: []string{oauth.GrantClientCredentials}})
	require.NoError(t, err)
	before := in.token(t, c.ID, secret)

	next, err := keys.Stage()
	require.NoError(t, err)
	assert.Equal(t, old, keys.SigningKeyID(), "a staged key does not sign")
	assert.Contains(t, in.jwks(t), next, "but is published")
	assert.Equal(t, old, kidOf(t, in.token(t, c.ID, secret)))
	exported, err := keys.Export()
	require.NoError(t, err)
	again, err := oauth.ParseKeySet(exported)
	require.NoError(t, err)
	assert.Equal(t, old, again.SigningKeyID(), "the export keeps which key signs")
	assert.Len(t, again.JWKS().Keys, 2)

	require.NoError(t, keys.Promote(next))
	after := in.token(t, c.ID, secret)
	assert.Equal(t, next, kidOf(t, after))
	assert.Equal(t, 200, in.api(t, before), "the old key still verifies")
	assert.Error(t, keys.Remove(next), "the signing key cannot be removed")
	require.NoError(t, keys.Remove(old))
	assert.Equal(t, next, keys.SigningKeyID(), "removing an older key keeps the signer")
	// An instance that has validated a token trusts it for CacheTTL (5 s);
	// one that has not refuses it at once.
	fresh := newJWTInstance(t, s, "https://auth.example.com", keys)
	assert.Equal(t, 401, fresh.api(t, before), "its tokens are refused once it is removed")
	assert.Equal(t, 200, fresh.api(t, after))
	assert.ErrorContains(t, keys.Promote("nope"), `no key "nope"`)

	_, err = oauth.New(s, oauth.Config{Issuer: "https://auth.example.com", Secret: make([]byte, 32), JWTKeys: &oauth.KeySet{}})
	assert.ErrorContains(t, err, "no keys", "an empty KeySet is refused at New")
}

func jwkJSON(t *testing.T, k jose.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := k.MarshalJSON()
	require.NoError(t, err)
	return b
}

func TestParseKeySetRefusesBadSets(t *testing.T) {
	t.Parallel()
	ec := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	good, other := ec(), ec()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	mismatched := *good
	mismatched.PublicKey = other.PublicKey
	set := func(signing string, keys ...json.RawMessage) []byte {
		b, err := json.Marshal(map[string]any{"keys": keys, "signing_kid": signing})
		require.NoError(t, err)
		return b
	}
	key := func(k any, kid, alg, use string) json.RawMessage {
		return jwkJSON(t, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: use})
	}
	many := make([]json.RawMessage, 101)
	for i := range many {
		many[i] = key(good, fmt.Sprint(i), "", "")
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"not JSON", "must be a JSON object", []byte("keys")},
		{"keys not an array", "must be a JSON object", []byte(`{"keys":{}}`)},
		{"no keys", "has no keys", []byte(`{}`)},
		{"an empty array", "has no keys", []byte(`{"keys":[]}`)},
		{"too many keys", "at most 100", set("", many...)},
		{"not a JWK", "key 0 of the set is not a JWK", []byte(`{"keys":[{"kty":"nope"}]}`)},
		{"an RSA key", "key 0 of the set is not an EC private key", set("", key(rsaKey, "r", "", ""))},
		{"a public key only", "key 0 of the set is not an EC private key", set("", key(&good.PublicKey, "p", "", ""))},
		{"P-384", "not on P-256", set("", key(p384, "x", "", ""))},
		{"no kid", "key 0 of the set has no kid", set("", key(good, "", "", ""))},
		{"a long kid", "more than 128 bytes", set("", key(good, strings.Repeat("k", 129), "", ""))},
		{"another alg", `key "a" is for ES384`, set("", key(good, "a", "ES384", ""))},
		{"use enc", `key "a" has use "enc"`, set("", key(good, "a", "", "enc"))},
		{"a kid twice", `has kid "a" twice`, set("", key(good, "a", "", ""), key(other, "a", "", ""))},
		{"x and y of another key", `key "m": its x and y are not the public key of its d`, set("", key(&mismatched, "m", "", ""))},
		{"an unknown signing_kid", `signing_kid "z" is not a key of the set`, set("z", key(good, "a", "", ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := oauth.ParseKeySet(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), privateD(t, good), "no key material in the error")
		})
	}

	ks, err := oauth.ParseKeySet(set("", key(good, "a", "ES256", "sig"), key(other, "b", "", "")))
	require.NoError(t, err, "alg and use may be given or left out")
	assert.Equal(t, "b", ks.SigningKeyID(), "without signing_kid, the last key signs")
}

// TestKeySetNeverPrintsPrivateKeys: printed with any verb or logged with
// either handler, a KeySet shows its key ids and no private key.
func TestKeySetNeverPrintsPrivateKeys(t *testing.T) {
	t.Parallel()
	keys, err := oauth.NewKeySet()
	require.NoError(t, err)
	exported, err := keys.Export()
	require.NoError(t, err)
	var set struct {
		Keys []struct {
			D string `json:"d"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(exported, &set))
	d := set.Keys[0].D
	require.NotEmpty(t, d, "Export carries the private key")
	dBytes, err := base64.RawURLEncoding.DecodeString(d)
	require.NoError(t, err)
	var decimal strings.Builder
	fmt.Fprint(&decimal, new(big.Int).SetBytes(dBytes))

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("keys", "set", keys)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("keys", "set", keys)
	out := fmt.Sprintf("%v %+v %#v %s", keys, keys, keys, keys) + logs.String()
	assert.Contains(t, out, keys.SigningKeyID())
	assert.NotContains(t, out, d)
	assert.NotContains(t, out, decimal.String())
}

// privateD is the JWK "d" of k.
func privateD(t *testing.T, k *ecdsa.PrivateKey) string {
	b, err := k.Bytes()
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func FuzzParseKeySet(f *testing.F) {
	keys, err := oauth.NewKeySet()
	if err != nil {
		f.Fatal(err)
	}
	_, _ = keys.Stage()
	exported, err := keys.Export()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(exported)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256"}],"signing_kid":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := oauth.ParseKeySet(data)
		if err != nil {
			return
		}
		// Whatever parses round-trips: same public keys, same signer.
		again, err := ks.Export()
		require.NoError(t, err)
		back, err := oauth.ParseKeySet(again)
		require.NoError(t, err)
		assert.Equal(t, ks.SigningKeyID(), back.SigningKeyID())
		a, _ := json.Marshal(ks.JWKS())
		b, _ := json.Marshal(back.JWKS())
		assert.JSONEq(t, string(a), string(b))
	})
}
