package main_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
)

// jwtToken runs the demo password grant (form from the instance that
// seeded the demo data) on s and returns the access token and its kid.
func jwtToken(t *testing.T, s *server, form url.Values) (token, kid string) {
	t.Helper()
	token = s.tokenFor(t, form)
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3, "a JWS: %s", token)
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	require.NoError(t, json.Unmarshal(hdr, &h))
	assert.Equal(t, "at+jwt", h.Typ)
	return token, h.Kid
}

// publishedKids are the key ids of s's JWKS.
func publishedKids(t *testing.T, s *server) []string {
	t.Helper()
	res, err := s.http.Get(s.base + oauth.PathJWKS)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	require.Equal(t, 200, res.StatusCode)
	require.NotContains(t, string(b), `"d"`, "no private key in the JWKS")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(b, &set))
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func (s *server) stop() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() }

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestJWTKeysSurviveRestartsAndRotate: with -jwt, the signing keys live
// in the database, so a restarted server accepts the tokens it issued
// before; `admin jwt-keys` stages, promotes and removes keys, each taking
// effect when the server next starts, and an old token verifies until its
// key is removed.
func TestJWTKeysSurviveRestartsAndRotate(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	// One public URL across restarts, as behind a proxy: a token's iss
	// must stay the server's, whatever port it listens on.
	flags := []string{"-jwt", "-issuer", "https://api.example.test"}
	s := start(t, db, flags...)
	form := s.demoPasswordForm()
	first, kid := jwtToken(t, s, form)
	assert.Equal(t, 200, s.do("GET", "/v1/contacts/me", first, nil).status)
	assert.Equal(t, []string{kid}, publishedKids(t, s))
	shown := admin(t, db, "jwt-keys", "show")
	assert.Equal(t, kid, shown["signing"])
	assert.NotContains(t, s.logs(), `"d"`, "the keys are logged by id only")

	restart := func() *server {
		s.stop()
		s = start(t, db, flags...)
		return s
	}
	restart()
	assert.Equal(t, 200, s.do("GET", "/v1/contacts/me", first, nil).status, "a restart keeps the keys")

	staged := admin(t, db, "jwt-keys", "stage")["staged"].(string)
	restart()
	assert.ElementsMatch(t, []string{kid, staged}, publishedKids(t, s), "a staged key is published")
	_, k := jwtToken(t, s, form)
	assert.Equal(t, kid, k, "but does not sign")

	promoted := admin(t, db, "jwt-keys", "promote", "--id", staged)
	assert.Equal(t, staged, promoted["signing"])
	restart()
	second, k := jwtToken(t, s, form)
	assert.Equal(t, staged, k, "the promoted key signs")
	assert.Equal(t, 200, s.do("GET", "/v1/contacts/me", first, nil).status, "tokens of the old key still verify")

	out, err := exec.Command(binary, "admin", "jwt-keys", "remove", "--id", staged, "-db", db).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "the signing key cannot be removed")
	out, err = exec.Command(binary, "admin", "jwt-keys", "promote", "--id", "nope", "-db", db).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), `no key "nope"`)

	removed := admin(t, db, "jwt-keys", "remove", "--id", kid)
	assert.Equal(t, []string{staged}, strs(removed["keys"]))
	restart()
	assert.Equal(t, 401, s.do("GET", "/v1/contacts/me", first, nil).status, "a removed key's tokens are refused")
	assert.Equal(t, 200, s.do("GET", "/v1/contacts/me", second, nil).status)
}

// TestJWTKeysFromEnvironment: GATEHOUSE_JWT_KEYS (an exported set) is
// used as it is; a bad one stops the server at start with the reason;
// the admin command will not change keys the database does not hold.
func TestJWTKeysFromEnvironment(t *testing.T) {
	keys, err := oauth.NewKeySet()
	require.NoError(t, err)
	exported, err := keys.Export()
	require.NoError(t, err)
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"

	t.Setenv("GATEHOUSE_JWT_KEYS", `{"keys":[]}`)
	out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-db", db, "-jwt").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "GATEHOUSE_JWT_KEYS: oauth: the key set has no keys")

	t.Setenv("GATEHOUSE_JWT_KEYS", string(exported))
	s := start(t, db, "-jwt")
	_, kid := jwtToken(t, s, s.demoPasswordForm())
	assert.Equal(t, keys.SigningKeyID(), kid)
	assert.Equal(t, []string{kid}, publishedKids(t, s), "through the spec-checked client: the JWKS is as documented")
	out, err = exec.Command(binary, "admin", "jwt-keys", "stage", "-db", db).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "GATEHOUSE_JWT_KEYS is set")
}

// TestTwoInstancesShareJWTKeys: two instances with -jwt on one PostgreSQL
// sign with the same key and publish the same set, so a JWT from either
// works on both and a verifier may fetch the JWKS from either.
func TestTwoInstancesShareJWTKeys(t *testing.T) {
	t.Parallel()
	redisURL := testenv.Redis(t)
	flags := []string{"-jwt", "-redis", redisURL, "-issuer", "https://api.example.test"} // one public URL for both
	a, pg := pgServer(t, flags...)
	b := start(t, pg, flags...)
	form := a.demoPasswordForm()
	fromA, kidA := jwtToken(t, a, form)
	fromB, kidB := jwtToken(t, b, form)
	assert.Equal(t, kidA, kidB, "both sign with the same key")
	assert.Equal(t, publishedKids(t, a), publishedKids(t, b), "and publish the same set")
	assert.Equal(t, 200, b.do("GET", "/v1/contacts/me", fromA, nil).status, "a JWT from A works on B")
	assert.Equal(t, 200, a.do("GET", "/v1/contacts/me", fromB, nil).status, "and one from B on A")
}
