package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
)

// codeFor runs the authorization flow for the confidential client and
// returns the code and its PKCE verifier ("" without PKCE).
func codeFor(e *env, state string, pkce bool) (code, verifier string) {
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	var opts []oauth2.AuthCodeOption
	if pkce {
		verifier = oauth2.GenerateVerifier()
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	loc := e.authorize(newBrowser(e.t), conf.AuthCodeURL(state, opts...), "allow")
	return loc.Query().Get("code"), verifier
}

// exchange posts a code exchange to base's token endpoint.
func exchange(t *testing.T, base, id, secret, code, verifier string) (int, map[string]any) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

// activeGrants is how many clients hold an active token of the env's user.
func activeGrants(t *testing.T, e *env) int {
	granted, err := e.store.GrantedClients(t.Context(), e.user.ID, time.Now())
	require.NoError(t, err)
	return len(granted)
}

// TestConcurrentCodeExchanges: on every store, one code exchanged by several requests at
// once (a client and an attacker who intercepted the code) is used more
// than once: RFC 6749 §4.1.2's "MUST deny the request and SHOULD revoke
// all tokens previously issued based on that authorization code". At
// most one exchange gets tokens, none gets a 500 (fosite answers a lost
// race server_error), and afterwards nothing issued for the code is
// active, whoever won.
func TestConcurrentCodeExchanges(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		store, _ := open()
		concurrentCodeExchanges(t, newEnvOn(t, store))
	})
}

func concurrentCodeExchanges(t *testing.T, e *env) {
	for round := range 12 {
		// PKCE's session is spent first when there is one; without, the
		// code itself is the race.
		code, verifier := codeFor(e, "state-race-"+string(rune('a'+round))+"1234", round%2 == 0)
		const racers = 6
		statuses := make([]int, racers)
		bodies := make([]map[string]any, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { statuses[i], bodies[i] = exchange(t, e.srv.URL, e.confID, e.confSec, code, verifier) })
		}
		wg.Wait()
		won := 0
		for i, s := range statuses {
			switch s {
			case 200:
				won++
			case 400:
				assert.Equal(t, "invalid_grant", bodies[i]["error"], "round %d: %v", round, bodies[i])
			default:
				t.Errorf("round %d: exchange %d answered %d: %v", round, i, s, bodies[i])
			}
		}
		assert.LessOrEqual(t, won, 1, "round %d: one code, tokens for more than one exchange", round)
		assert.Zero(t, activeGrants(t, e), "round %d (%d won): a token issued for a code used twice is still active", round, won)
	}
}

// TestCodeReplayDuringTheExchange: a replay of the code landing while the
// first exchange runs (after it spent the code, before or after it
// stored the tokens), on another instance, leaves nothing active and
// both refused; on every store.
func TestCodeReplayDuringTheExchange(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		inner, _ := open()
		codeReplayDuringTheExchange(t, newEnvOn(t, inner))
	})
}

func codeReplayDuringTheExchange(t *testing.T, e *env) {
	store := &pausingStore{Store: e.store}
	second, err := oauth.New(store, oauth.Config{Issuer: e.srv.URL, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}, InsecureCookies: true})
	require.NoError(t, err)
	srv := httptest.NewServer(second.Handler())
	t.Cleanup(srv.Close)

	for i, when := range []struct {
		kind   storage.TokenKind
		before bool
	}{{storage.KindAccessToken, true}, {storage.KindRefreshToken, true}, {storage.KindRefreshToken, false}} {
		code, verifier := codeFor(e, "state-replay-"+string(rune('a'+i))+"1234", true)
		var replay int
		var replayBody map[string]any
		run := func() { replay, replayBody = exchange(t, e.srv.URL, e.confID, e.confSec, code, verifier) }
		store.mu.Lock()
		store.kind = when.kind
		if when.before {
			store.before = run
		} else {
			store.after = run
		}
		store.mu.Unlock()
		status, body := exchange(t, srv.URL, e.confID, e.confSec, code, verifier)
		name := string(when.kind) + map[bool]string{true: ", before it is stored", false: ", after it is stored"}[when.before]
		assert.Equal(t, 400, replay, "%s: the replay: %v", name, replayBody)
		assert.Equal(t, 400, status, "%s: the exchange the replay overtook: %v", name, body)
		assert.Equal(t, "invalid_grant", body["error"], name)
		assert.Zero(t, activeGrants(t, e), "%s: a token issued for a code used twice is still active", name)
	}
}
