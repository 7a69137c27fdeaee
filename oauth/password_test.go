package oauth_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
)

// signInCookie signs ada in on p's own pages and returns the session
// cookie, or nil when the sign-in fails.
func signInCookie(t *testing.T, p *oauth.Provider, password string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if _, err := p.SignIn(rec, httptest.NewRequest("POST", "/login", nil), "demo", "ada@example.com", password); err != nil {
		return nil
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == oauth.CookieSession {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// signedIn reports whether c is a live session of p.
func signedIn(p *oauth.Provider, c *http.Cookie) bool {
	r := httptest.NewRequest("GET", "/dashboard", nil)
	r.AddCookie(c)
	return p.SignedIn(r) != nil
}

// TestSetPassword: a new password replaces the old one at once, for the
// password grant and the sign-in pages, and ends the user's sessions;
// bad input is a FieldError, an unknown user not found.
func TestSetPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	session := signInCookie(t, e.p, "correct horse battery")
	require.NotNil(t, session)
	require.True(t, signedIn(e.p, session))

	require.NoError(t, e.p.SetPassword(t.Context(), e.user.ID, "a new and longer passphrase"))
	assert.False(t, signedIn(e.p, session), "the session opened with the old password ended")
	assert.Nil(t, signInCookie(t, e.p, "correct horse battery"), "the old password no longer signs in")
	assert.NotNil(t, signInCookie(t, e.p, "a new and longer passphrase"))
	grant := func(password string) int {
		res, _ := e.post("/oauth/token", map[string][]string{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
			"password": {password}}, e.confID, e.confSec)
		return res.StatusCode
	}
	assert.Equal(t, http.StatusBadRequest, grant("correct horse battery"))
	assert.Equal(t, http.StatusOK, grant("a new and longer passphrase"))

	for _, bad := range []string{"short", strings.Repeat("x", 1025)} {
		var fe *oauth.FieldError
		assert.True(t, errors.As(e.p.SetPassword(t.Context(), e.user.ID, bad), &fe), "%d characters", len(bad))
	}
	assert.ErrorIs(t, e.p.SetPassword(t.Context(), "nobody", "long enough password"), storage.ErrNotFound)
}

// TestPasswordHashesUpgradeAtSignIn: when a provider's PasswordParams
// are raised, a user's hash made with the old ones is replaced by one
// made with the new at their next successful sign-in (and only then),
// keeps verifying throughout, and is never made weaker by a provider
// still on the old ones.
func TestPasswordHashesUpgradeAtSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // users hashed with m=64,t=1,p=1
	params := func() string {
		u, err := e.store.GetUser(t.Context(), e.user.ID)
		require.NoError(t, err)
		return strings.Split(u.PasswordHash, "$")[3]
	}
	require.Equal(t, "m=64,t=1,p=1", params())
	raised, err := oauth.New(e.store, oauth.Config{Issuer: e.srv.URL, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 2, Memory: 128, Threads: 1}})
	require.NoError(t, err)

	assert.Nil(t, signInCookie(t, raised, "wrong password"))
	assert.Equal(t, "m=64,t=1,p=1", params(), "a failed sign-in changes nothing")
	require.NotNil(t, signInCookie(t, raised, "correct horse battery"))
	assert.Equal(t, "m=128,t=2,p=1", params(), "upgraded at the sign-in")
	before, err := e.store.GetUser(t.Context(), e.user.ID)
	require.NoError(t, err)
	require.NotNil(t, signInCookie(t, raised, "correct horse battery"), "the new hash verifies")
	after, err := e.store.GetUser(t.Context(), e.user.ID)
	require.NoError(t, err)
	assert.Equal(t, before.PasswordHash, after.PasswordHash, "an up-to-date hash is left alone")
	assert.NotNil(t, signInCookie(t, e.p, "correct horse battery"), "a provider on the old parameters still verifies it")
	assert.Equal(t, "m=128,t=2,p=1", params(), "and never makes it weaker")
}

// afterLookup runs a function once, after the next user lookup by email:
// a change landing while a sign-in checks the password.
type afterLookup struct {
	oauth.Store
	then func()
}

func (s *afterLookup) GetUserByEmail(ctx context.Context, org, email string) (*storage.User, error) {
	u, err := s.Store.GetUserByEmail(ctx, org, email)
	if then := s.then; then != nil {
		s.then = nil
		then()
	}
	return u, err
}

// TestPasswordUpgradeKeepsChangesMadeDuringTheSignIn: a sign-in that
// upgrades the user's hash writes the hash alone, and only over the one
// it checked: a password set while it ran (by an administrator, on
// another instance) is not undone by the old password's new hash, and a
// change of names stands.
func TestPasswordUpgradeKeepsChangesMadeDuringTheSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // users hashed with m=64,t=1,p=1
	store := &afterLookup{Store: e.store}
	raised, err := oauth.New(store, oauth.Config{Issuer: e.srv.URL, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 2, Memory: 128, Threads: 1}})
	require.NoError(t, err)

	store.then = func() {
		require.NoError(t, e.p.SetPassword(context.Background(), e.user.ID, "a new and longer passphrase"))
	}
	require.NotNil(t, signInCookie(t, raised, "correct horse battery"), "the password was right when it was checked")
	assert.Nil(t, signInCookie(t, raised, "correct horse battery"), "the old password does not come back")
	assert.NotNil(t, signInCookie(t, raised, "a new and longer passphrase"), "the password set meanwhile stands")

	store.then = func() {
		u, err := e.store.GetUser(context.Background(), e.user.ID)
		require.NoError(t, err)
		u.FirstName = "Augusta"
		require.NoError(t, e.store.UpdateUser(context.Background(), u))
	}
	require.NoError(t, e.p.SetPassword(t.Context(), e.user.ID, "a weakly hashed passphrase"))
	require.NotNil(t, signInCookie(t, raised, "a weakly hashed passphrase"))
	u, err := e.store.GetUser(t.Context(), e.user.ID)
	require.NoError(t, err)
	assert.Equal(t, "Augusta", u.FirstName, "a change of names during the upgrade stands")
	assert.Equal(t, "m=128,t=2,p=1", strings.Split(u.PasswordHash, "$")[3], "and the hash was upgraded")
}

// TestImportedPasswordHashes: users brought from another system keep
// their passwords. A bcrypt hash ($2a$, $2b$, PHP's $2y$) verifies as it
// is and a hash of another format through Config.LegacyPasswords; each is
// replaced by an argon2id hash at the first sign-in, which then verifies.
// A wrong password changes nothing; a format no checker knows never signs
// in; a bcrypt hash stays when the password is longer than the 72 bytes
// bcrypt read; a bcrypt cost past MaxBcryptCost is refused unread.
func TestImportedPasswordHashes(t *testing.T) {
	t.Parallel()
	const password = "correct horse battery"
	bcryptOf := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		require.NoError(t, err)
		return string(h)
	}
	long := strings.Repeat("long passphrase ", 5)[:72]
	sum, err := pbkdf2.Key(sha256.New, password, []byte("seasalt"), 1000, sha256.Size)
	require.NoError(t, err)
	django := "pbkdf2_sha256$1000$seasalt$" + base64.StdEncoding.EncodeToString(sum)
	cases := []struct {
		name, hash, password string
		legacy               bool // Config.LegacyPasswords set
		signsIn, upgraded    bool
	}{
		{"bcrypt 2a", bcryptOf(password), password, false, true, true},
		{"bcrypt 2b", "$2b$" + bcryptOf(password)[4:], password, false, true, true},
		{"bcrypt 2y", "$2y$" + bcryptOf(password)[4:], password, false, true, true},
		{"django pbkdf2", django, password, true, true, true},
		{"django pbkdf2 without a checker", django, password, false, false, false},
		{"bcrypt, a password past 72 bytes", bcryptOf(long), long + " and more", false, true, false},
		{"bcrypt of cost 17", "$2a$17$" + strings.Repeat("a", 53), password, false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *oauth.Config) {
				if tc.legacy {
					c.LegacyPasswords = djangoPBKDF2
				}
			})
			require.NoError(t, e.store.SetPasswordHash(t.Context(), e.user.ID, "", tc.hash, time.Now()))
			stored := func() string {
				u, err := e.store.GetUser(t.Context(), e.user.ID)
				require.NoError(t, err)
				return u.PasswordHash
			}
			grant := func(pw string) int {
				res, _ := e.post("/oauth/token", map[string][]string{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
					"password": {pw}}, e.confID, e.confSec)
				return res.StatusCode
			}
			assert.Equal(t, http.StatusBadRequest, grant("not the password"))
			assert.Nil(t, signInCookie(t, e.p, "not the password"))
			assert.Equal(t, tc.hash, stored(), "a wrong password changes nothing")
			if !tc.signsIn {
				assert.Equal(t, http.StatusBadRequest, grant(tc.password))
				assert.Nil(t, signInCookie(t, e.p, tc.password))
				assert.Equal(t, tc.hash, stored())
				return
			}
			assert.Equal(t, http.StatusOK, grant(tc.password))
			if !tc.upgraded {
				assert.Equal(t, tc.hash, stored(), "kept")
				assert.NotNil(t, signInCookie(t, e.p, tc.password))
				return
			}
			assert.True(t, strings.HasPrefix(stored(), "$argon2id$"), "upgraded at the sign-in: %s", stored())
			assert.NotNil(t, signInCookie(t, e.p, tc.password), "the argon2id hash verifies")
			assert.Equal(t, http.StatusOK, grant(tc.password))
			assert.Equal(t, http.StatusBadRequest, grant("not the password"))
		})
	}
}
