package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// callback is an OAuth client's redirect URI: it records what the
// authorization server sent back.
type callback struct {
	srv   *http.Server
	url   string
	mu    sync.Mutex
	query map[string]string
}

func newCallback(t *testing.T) *callback {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &callback{url: "http://" + ln.Addr().String() + "/callback", query: map[string]string{}}
	c.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		for k := range r.URL.Query() {
			c.query[k] = r.URL.Query().Get(k)
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>callback</title><p id="done">Signed in; you can close this page.</p>`)
	})}
	go func() { _ = c.srv.Serve(ln) }()
	t.Cleanup(func() { _ = c.srv.Close() })
	return c
}

func (c *callback) get(k string) string { c.mu.Lock(); defer c.mu.Unlock(); return c.query[k] }

// profileDir returns a directory for Chromium's profile, removed when the
// test ends. Chromium's helper processes may still write to it for a moment
// after the browser is gone (t.TempDir's cleanup once failed with "directory
// not empty"), so removal is retried for up to five seconds before it fails
// the test.
func profileDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gatehouse-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("removing Chromium's profile: %v", err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// TestBrowserDashboardAndAuthorizationCode drives headless Chromium: it
// signs in to the dashboard, creates a key and uses it, tries a call in
// the API explorer, creates an application, and completes the
// authorization-code flow (with PKCE) through the real login and consent
// pages, exchanging the code with golang.org/x/oauth2. With
// GATEHOUSE_SCREENSHOTS=DIR it saves a PNG of each page.
func TestBrowserDashboardAndAuthorizationCode(t *testing.T) {
	chromium := testenv.Chromium(t)
	s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"))
	password := strings.Fields(s.demo["user"])[2]
	shots := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if shots != "" {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profileDir(t)), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	// Accept the dashboard's confirm() dialogs.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if shots == "" {
				return nil
			}
			var png []byte
			if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		require.NoError(t, chromedp.Run(ctx, actions...), "%s; server log:\n%s", what, s.logs())
	}

	// Sign in to the dashboard.
	run("sign in",
		chromedp.Navigate(s.base+"/dashboard/keys"),
		chromedp.WaitVisible("#domain_prefix", chromedp.ByQuery), shot("01-dashboard-login"),
		chromedp.SendKeys("#domain_prefix", "demo", chromedp.ByQuery),
		chromedp.SendKeys("#email", "demo@example.com", chromedp.ByQuery),
		chromedp.SendKeys("#password", password, chromedp.ByQuery),
		chromedp.Click(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#keys", chromedp.ByQuery), shot("02-keys"))

	// Create a key with two scopes; it is shown once, then used.
	var key string
	run("create key",
		chromedp.SendKeys("#key-name", "Browser key", chromedp.ByQuery),
		chromedp.Click(`#create-key input[name=scope][value="customers:read"]`, chromedp.ByQuery),
		chromedp.Click(`#create-key input[name=scope][value="customers:write"]`, chromedp.ByQuery),
		chromedp.Click(`#create-key button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#new-key-value", chromedp.ByQuery),
		chromedp.Text("#new-key-value", &key, chromedp.ByQuery), shot("03-key-created"))
	require.True(t, strings.HasPrefix(key, "gate_test_"), "key shown: %q", key)
	r := s.do("POST", "/v1/customers", key, map[string]any{"first_name": "Brow", "last_name": "Ser", "email": "browser@example.com"})
	require.Equal(t, 201, r.status, string(r.body))
	assert.Equal(t, 403, s.do("GET", "/v1/bookings", key, nil).status, "only the chosen scopes")
	var listed string
	run("key listed", chromedp.Navigate(s.base+"/dashboard/keys"), chromedp.WaitVisible("#keys", chromedp.ByQuery),
		chromedp.Text("#keys", &listed, chromedp.ByQuery))
	assert.Contains(t, listed, "Browser key")
	assert.NotContains(t, listed, key, "the list shows the display form only")

	// The API explorer: a one-hour sandbox key, then "Send" on GET /v1/contacts/me.
	var out string
	run("explorer",
		chromedp.Navigate(s.base+"/docs"), chromedp.WaitVisible("#sandbox-key", chromedp.ByQuery),
		chromedp.Click("#sandbox-key", chromedp.ByQuery),
		chromedp.WaitVisible(`#sandbox-key[disabled]`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('explorer-key').value.startsWith('gate_test_')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Click(`#getMe form.try button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#getMe pre.out[data-status]`, chromedp.ByQuery),
		chromedp.Text(`#getMe pre.out`, &out, chromedp.ByQuery), shot("04-explorer"))
	assert.Contains(t, out, "200 ")
	assert.Contains(t, out, "demo@example.com")

	// Create an application whose redirect URI is a local callback.
	cb := newCallback(t)
	var clientID, clientSecret string
	run("create application",
		chromedp.Navigate(s.base+"/dashboard/apps"), chromedp.WaitVisible("#create-app", chromedp.ByQuery),
		chromedp.SendKeys("#app-name", "Browser App", chromedp.ByQuery),
		chromedp.SendKeys("#redirect_uris", cb.url, chromedp.ByQuery),
		chromedp.Click(`#create-app input[name=scope][value="bookings:read"]`, chromedp.ByQuery),
		chromedp.Click(`#create-app input[name=scope][value="customers:read"]`, chromedp.ByQuery),
		chromedp.Click(`#create-app button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#new-client-secret", chromedp.ByQuery),
		chromedp.Text("#new-client-id", &clientID, chromedp.ByQuery),
		chromedp.Text("#new-client-secret", &clientSecret, chromedp.ByQuery), shot("05-app-created"))
	require.NotEmpty(t, clientSecret)

	// Sign out, then the authorization-code flow through the provider's
	// own sign-in and consent pages.
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: cb.url, Scopes: []string{"bookings:read", "customers:read"},
		Endpoint: oauth2.Endpoint{AuthURL: s.base + "/oauth/authorize", TokenURL: s.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	state := "state-" + oauth2.GenerateVerifier()[:16]
	var consent string
	run("authorize",
		chromedp.Navigate(s.base+"/dashboard/keys"), chromedp.WaitVisible(`form.who button`, chromedp.ByQuery),
		chromedp.Click(`form.who button`, chromedp.ByQuery), chromedp.WaitVisible("#domain_prefix", chromedp.ByQuery),
		chromedp.Navigate(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible("#domain_prefix", chromedp.ByQuery), shot("06-oauth-login"),
		chromedp.SendKeys("#domain_prefix", "demo", chromedp.ByQuery),
		chromedp.SendKeys("#email", "demo@example.com", chromedp.ByQuery),
		chromedp.SendKeys("#password", password, chromedp.ByQuery),
		chromedp.Click(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`button[value=allow]`, chromedp.ByQuery),
		chromedp.Text("ul.scopes", &consent, chromedp.ByQuery), shot("07-oauth-consent"),
		chromedp.Click(`button[value=allow]`, chromedp.ByQuery),
		chromedp.WaitVisible("#done", chromedp.ByQuery))
	assert.Contains(t, consent, "bookings:read")
	assert.Contains(t, consent, "customers:read")
	require.Equal(t, state, cb.get("state"))
	code := cb.get("code")
	require.NotEmpty(t, code, "no code: %v", cb.query)

	octx := context.WithValue(context.Background(), oauth2.HTTPClient, s.http)
	tok, err := conf.Exchange(octx, code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	res, err := conf.Client(octx, tok).Get(s.base + "/v1/bookings")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	res, err = conf.Client(octx, tok).Get(s.base + "/v1/payments")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 403, res.StatusCode, "the token carries only the consented scopes")
	// RFC 9700 §4.5: a replayed code fails and revokes what it issued.
	_, err = conf.Exchange(octx, code, oauth2.VerifierOption(verifier))
	require.Error(t, err, "a code works once")
	require.Eventually(t, func() bool { return s.do("GET", "/v1/bookings", tok.AccessToken, nil).status == 401 }, 10*time.Second, 100*time.Millisecond,
		"the replay revokes the tokens the code issued")
}
