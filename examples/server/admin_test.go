package main_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// TestAdminOrgCreateChecksThePrefix: a new organisation's domain prefix
// is a DNS label, refused otherwise with the rule; its name is text a
// store can hold.
func TestAdminOrgCreateChecksThePrefix(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	start(t, db).stop()
	for _, bad := range []string{"-acme", "acme-", "ac me", "acme_ltd", "acme.example", "ümlaut", strings.Repeat("a", 64)} {
		out, err := exec.Command(binary, "admin", "org", "create", "--prefix", bad, "--name", "X", "-db", db).CombinedOutput()
		require.Error(t, err, bad)
		assert.Contains(t, string(out), "must be 1 to 63 letters, digits and hyphens", bad)
	}
	out, err := exec.Command(binary, "admin", "org", "create", "--prefix", "ok", "--name", "Bad \xff name", "-db", db).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--name must be UTF-8 text")
	got := admin(t, db, "org", "create", "--prefix", "Acme-2", "--name", "Acme 2")
	assert.Equal(t, "acme-2", got["domain_prefix"], "stored normalised")
	assert.Equal(t, map[string]any{"customers": 3.0, "bookings": 3.0, "payments": 2.0, "staff": 2.0}, got["sandbox_data"])
	got = admin(t, db, "org", "create", "--prefix", strings.Repeat("a", 63), "--name", "Long", "--sandbox-data=false")
	assert.Equal(t, map[string]any{"customers": 0.0, "bookings": 0.0, "payments": 0.0, "staff": 0.0}, got["sandbox_data"])
}

// TestAdminRotatesClientSecret: `admin client rotate-secret` prints a new
// secret; the old one keeps working for --grace, and a rotation with
// --grace 0 stops the current one at once.
func TestAdminRotatesClientSecret(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db)
	status := func(secret string) int {
		form := s.demoPasswordForm()
		form.Set("client_secret", secret)
		return s.postForm(t, "/oauth/token", form)
	}
	old := s.demo["client secret"]
	rotated := admin(t, db, "client", "rotate-secret", "--id", s.demo["OAuth client"], "--grace", "1h")
	second := rotated["client_secret"].(string)
	assert.NotEqual(t, old, second)
	assert.NotNil(t, rotated["previous_secret_valid_until"])
	assert.Equal(t, 200, status(second), "the new secret")
	assert.Equal(t, 200, status(old), "the old one, during the grace")

	third := admin(t, db, "client", "rotate-secret", "--id", s.demo["OAuth client"], "--grace", "0")
	assert.Nil(t, third["previous_secret_valid_until"])
	assert.Equal(t, 401, status(second), "--grace 0: the replaced secret stops at once")
	assert.Equal(t, 401, status(old))
	assert.Equal(t, 200, status(third["client_secret"].(string)))

	out, err := exec.Command(binary, "admin", "client", "rotate-secret", "--id", "nope", "-db", db).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), `no client "nope"`)
}

// TestAdminSetsAPassword: `admin user set-password` replaces the demo
// user's password for the password grant at once; a short password and
// an unknown user are refused.
func TestAdminSetsAPassword(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db)
	form := s.demoPasswordForm()
	old := form.Get("password")
	require.Equal(t, 200, s.postForm(t, "/oauth/token", form))
	admin(t, db, "user", "set-password", "--org", "demo", "--email", form.Get("username"), "--password", "a brand new passphrase")
	assert.Equal(t, 400, s.postForm(t, "/oauth/token", form), "the old password")
	form.Set("password", "a brand new passphrase")
	assert.Equal(t, 200, s.postForm(t, "/oauth/token", form))
	for args, want := range map[string]string{
		"--email " + form.Get("username") + " --password short": "must be 8 to 1024 characters",
		"--email nobody@example.com --password long-enough-1":   `no user "nobody@example.com"`,
	} {
		out, err := exec.Command(binary, append([]string{"admin", "user", "set-password", "--org", "demo", "-db", db}, strings.Fields(args)...)...).CombinedOutput()
		require.Error(t, err, args)
		assert.Contains(t, string(out), want, args)
	}
	assert.NotEqual(t, old, form.Get("password"))
}

// TestAdminImportsAUserWithTheirHash: `admin user create --password-hash`
// brings a user from another system with the bcrypt hash it stored; the
// user signs in with their password (the password grant) and from then on
// the stored hash is argon2id. A password beside the hash, or a hash in a
// format nothing checks, is refused.
func TestAdminImportsAUserWithTheirHash(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db)
	hash, err := bcrypt.GenerateFromPassword([]byte("an imported passphrase"), bcrypt.MinCost)
	require.NoError(t, err)
	created := admin(t, db, "user", "create", "--org", "demo", "--email", "grace@example.com", "--password-hash", string(hash))
	form := s.demoPasswordForm()
	form.Set("username", "grace@example.com")
	form.Set("password", "not the passphrase")
	assert.Equal(t, 400, s.postForm(t, "/oauth/token", form))
	form.Set("password", "an imported passphrase")
	assert.Equal(t, 200, s.postForm(t, "/oauth/token", form))
	assert.Equal(t, 200, s.postForm(t, "/oauth/token", form), "again, with the argon2id hash")

	store, err := sqlstore.Open(t.Context(), db, sqlstore.Config{})
	require.NoError(t, err)
	defer store.Close()
	u, err := store.GetUser(t.Context(), created["id"].(string))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u.PasswordHash, "$argon2id$"), "upgraded at the first sign-in: %s", u.PasswordHash)

	for args, want := range map[string]string{
		"--password-hash " + string(hash) + " --password long-enough-1": "give a password or its hash, not both",
		"--password-hash md5$5f4dcc3b5aa765d61d8327deb882cf99":          "must be an argon2id or bcrypt hash",
	} {
		out, err := exec.Command(binary, append([]string{"admin", "user", "create", "--org", "demo", "--email", "other@example.com", "-db", db}, strings.Fields(args)...)...).CombinedOutput()
		require.Error(t, err, args)
		assert.Contains(t, string(out), want, args)
	}
}

// TestAdminRevocationReachesASQLiteServerAtOnce: a key revoked by `admin
// key revoke`, another process on the server's SQLite file, is refused by
// the running server at once, though the server verified it a moment
// before and (-cache-ttl 1h) trusts its cache for an hour: the revocation
// reaches it through the file's invalidations table. Bad -cache-ttl
// values are refused with the rule.
func TestAdminRevocationReachesASQLiteServerAtOnce(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"0s", "500ms", "2h", "soon", "-5s"} {
		out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-db", "sqlite:"+t.TempDir()+"/g.db", "-cache-ttl", bad).CombinedOutput()
		require.Error(t, err, bad)
		assert.Contains(t, string(out), "-cache-ttl: \""+bad+"\" is not a duration from 1s to 1h", bad)
	}
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db, "-cache-ttl", "1h")
	made := admin(t, db, "key", "create", "--org", "demo", "--name", "to revoke", "--scopes", "customers:read", "--env", "test")
	key := made["key"].(string)
	require.Equal(t, 200, s.do("GET", "/v1/customers", key, nil).status) // cached for an hour
	admin(t, db, "key", "revoke", "--id", made["id"].(string))
	begun := time.Now()
	require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", key, nil).status == 401 }, 30*time.Second, 20*time.Millisecond,
		"the server refuses the key the admin command revoked")
	t.Logf("refused %.2f s after the admin command returned", time.Since(begun).Seconds())
}

// adminIn runs an admin command with stdin and returns its output and
// error.
func adminIn(t *testing.T, db, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"admin"}, append(args, "-db", db)...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestAdminFindsAndRevokesALeakedKey: an operator told of a leaked key
// finds it by its text (read from stdin, out of shell history), revokes
// it by its text, sees it revoked in the organisation's list, and the
// running server refuses it; no output names the key or its hash. A
// deleted client's tokens are refused too.
func TestAdminFindsAndRevokesALeakedKey(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db, "-cache-ttl", "1h")
	made := admin(t, db, "key", "create", "--org", "demo", "--name", "leaked", "--scopes", "customers:read", "--env", "live")
	leaked := made["key"].(string)
	require.Equal(t, 200, s.do("GET", "/v1/customers", leaked, nil).status)

	out, err := adminIn(t, db, leaked+"\n", "key", "find", "--key", "-")
	require.NoError(t, err, out)
	var found map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &found), out)
	assert.Equal(t, made["id"], found["id"])
	assert.Equal(t, "active", found["state"])
	assert.Equal(t, "live", found["environment"])

	out, err = adminIn(t, db, leaked+"\n", "key", "revoke", "--key", "-")
	require.NoError(t, err, out)
	assert.Contains(t, out, made["id"].(string))
	require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", leaked, nil).status == 401 }, 30*time.Second, 20*time.Millisecond,
		"the server refuses the revoked key")

	list := admin(t, db, "key", "list", "--org", "demo")
	var states []string
	for _, k := range list["keys"].([]any) {
		k := k.(map[string]any)
		assert.NotContains(t, k, "hash")
		if k["id"] == made["id"] {
			states = append(states, k["state"].(string))
		}
	}
	assert.Equal(t, []string{"revoked"}, states)

	for _, tc := range []struct{ stdin, want string }{
		{"not-a-key\n", "--key is not an API key of this server"},
		{"", "--key -: reading the key from stdin"},
	} {
		out, err := adminIn(t, db, tc.stdin, "key", "find", "--key", "-")
		require.Error(t, err)
		assert.Contains(t, out, tc.want)
	}
	out, err = adminIn(t, db, "", "key", "revoke", "--id", made["id"].(string), "--key", "-")
	require.Error(t, err)
	assert.Contains(t, out, "--id or --key, not both")
	out, err = adminIn(t, db, "", "key", "revoke", "--id", "key_nope")
	require.Error(t, err)
	assert.Contains(t, out, `no key "key_nope"`)

	// A client deleted by the admin command: its token stops at once on the
	// running server, which cached it for an hour.
	at := s.passwordToken(t)
	require.Equal(t, 200, s.do("GET", "/v1/contacts/me", at, nil).status)
	deleted := admin(t, db, "client", "delete", "--id", s.demo["OAuth client"])
	assert.Equal(t, s.demo["OAuth client"], deleted["client_id"])
	require.Eventually(t, func() bool { return s.do("GET", "/v1/contacts/me", at, nil).status == 401 }, 30*time.Second, 20*time.Millisecond,
		"the server refuses the deleted client's token")
	out, err = adminIn(t, db, "", "client", "delete", "--id", s.demo["OAuth client"])
	require.Error(t, err)
	assert.Contains(t, out, "no client")
	assert.NotContains(t, s.logs(), leaked)
}

// TestAdminUpdatesClientsAndKeys: `admin client update` and `admin key
// update` change what an application or a key may do after it was made.
// A scope taken away from the running server's application stops working
// in the token already issued, and one taken from a key in the key, both
// announced through the database to the server (another process); only
// the flags given change; bad input is refused.
func TestAdminUpdatesClientsAndKeys(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + t.TempDir() + "/gatehouse.db"
	s := start(t, db, "-cache-ttl", "1h") // what changes reaches it by announcement, not by the cache running out
	form := s.demoPasswordForm()
	form.Set("scope", "customers:read payments:read")
	at := s.tokenFor(t, form)
	require.Equal(t, 200, s.do("GET", "/v1/payments", at, nil).status)

	id := s.demo["OAuth client"]
	got := admin(t, db, "client", "update", "--id", id, "--scopes", "customers:read bookings:read")
	assert.Equal(t, []any{"bookings:read", "customers:read"}, got["scopes"])
	assert.Equal(t, "Demo App", got["name"], "the name, not given, is kept")
	assert.Contains(t, got["grants"], "password")
	require.Eventually(t, func() bool { return s.do("GET", "/v1/payments", at, nil).status == 403 }, 10*time.Second, 50*time.Millisecond,
		"payments:read, taken from the application, stops in its token")
	assert.Equal(t, 200, s.do("GET", "/v1/customers", at, nil).status, "what it keeps still works")
	form.Set("scope", "payments:read")
	assert.Equal(t, 400, s.postForm(t, "/oauth/token", form), "nor can it be asked for")
	got = admin(t, db, "client", "update", "--id", id, "--name", "Demo App 2", "--redirect-uri", "https://app.example/cb")
	assert.Equal(t, "Demo App 2", got["name"])
	assert.Equal(t, []any{"https://app.example/cb"}, got["redirect_uris"])
	assert.Equal(t, []any{"bookings:read", "customers:read"}, got["scopes"], "kept")

	k := admin(t, db, "key", "create", "--org", "demo", "--name", "CI", "--scopes", "customers:read", "--env", "test")
	key := k["key"].(string)
	require.Equal(t, 200, s.do("GET", "/v1/customers", key, nil).status)
	got = admin(t, db, "key", "update", "--id", k["id"].(string), "--scopes", "payments:read", "--rate-limit", "500/h,50/m")
	assert.Equal(t, []any{"payments:read"}, got["scopes"])
	assert.Equal(t, "CI", got["name"], "kept")
	require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", key, nil).status == 403 }, 10*time.Second, 50*time.Millisecond)
	r := s.do("GET", "/v1/payments", key, nil)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, "50", r.header.Get("X-RateLimit-Limit"), "its own rate limit")

	for _, bad := range [][]string{
		{"client", "update", "--id", id},
		{"client", "update", "--id", storage.NewID(), "--name", "x"},
		{"client", "update", "--id", id, "--scopes", "nope:read"},
		{"client", "update", "--id", id, "--redirect-uri", "http://app.example/cb"},
		{"key", "update", "--id", k["id"].(string)},
		{"key", "update", "--id", k["id"].(string), "--rate-limit", "lots"},
		{"key", "update", "--id", k["id"].(string), "--scopes", "nope:read"},
	} {
		out, err := exec.Command(binary, append(append([]string{"admin"}, bad...), "-db", db)...).CombinedOutput()
		assert.Error(t, err, "%v: %s", bad, out)
	}
}
