package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
)

// LoginProvider tells the authorization endpoint who the user is, for an
// application that signs users in itself.
type LoginProvider interface {
	// User returns the signed-in user of r, or nil when nobody is.
	User(r *http.Request) (*storage.User, error)
	// SignIn answers a request made while nobody is signed in — usually
	// a redirect to the application's sign-in page, which sends the user
	// back to returnTo (the full authorization request) afterwards.
	SignIn(w http.ResponseWriter, r *http.Request, returnTo string)
}

// ConsentPolicy decides whether the user must be asked.
type ConsentPolicy interface {
	// Skip reports whether to grant scopes to the client without showing
	// the consent page.
	Skip(ctx context.Context, u *storage.User, clientID string, scopes []string) (bool, error)
}

// Cookie names of the authorization pages.
const (
	CookieSession = "gatehouse_session"
	CookieCSRF    = "gatehouse_csrf"
)

const sessionLifetime = 12 * time.Hour

// AuthorizeHandler serves GET and POST /oauth/authorize: it validates the
// request with fosite (client, redirect URI, response type, PKCE, state),
// shows the sign-in page when nobody is signed in, then the consent page
// listing each requested scope with its description, and redirects back
// to the client with a code (query) or a token (fragment), or with
// error=access_denied when the user declines. Consent can be remembered;
// scopes already granted skip the page. Forms are protected against CSRF
// by a token bound to a cookie and the request, and by
// http.CrossOriginProtection; pages refuse to be framed.
func (p *Provider) AuthorizeHandler() http.Handler {
	return http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.authorize))
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")

	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var action string
	var form map[string]string
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		form = map[string]string{}
		for _, k := range []string{"action", "csrf", "domain_prefix", "email", "password", "remember"} {
			form[k] = r.PostForm.Get(k)
		}
		action = form["action"]
	}
	// fosite parses the authorization request from the query only: our
	// form fields (the password among them) never reach it.
	q := r.Clone(ctx)
	q.Method, q.Body, q.Form, q.PostForm = http.MethodGet, http.NoBody, nil, nil
	// fosite refuses an absent state whatever its configuration says;
	// with Config.AllowMissingState it is given a stand-in, removed from
	// the request it returns, so no redirect carries it.
	noState := p.cfg.AllowMissingState && !r.URL.Query().Has("state")
	if noState {
		w = stateless{w}
		qq := q.URL.Query()
		qq.Set("state", strings.Repeat("-", fosite.MinParameterEntropy))
		q.URL.RawQuery = qq.Encode()
	}
	ar, err := p.fosite.NewAuthorizeRequest(ctx, q)
	if a, ok := ar.(*fosite.AuthorizeRequest); ok && noState {
		a.State = ""
		a.Form.Del("state")
	}
	if err != nil {
		p.logFositeError(r.URL.Path, err)
		p.fosite.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if ar.GetResponseTypes().ExactOne("token") && !fosite.IsRedirectURISecureStrict(ctx, ar.GetRedirectURI()) {
		// fosite's implicit handler skips this check; the code flow has it.
		p.fosite.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("The redirect URI must use https (or http on loopback)."))
		return
	}
	if err := once(r.URL.Query(), authorizeParams); err != nil {
		p.fosite.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	c := ar.GetClient().(*client)
	if err := checkPKCE(ar, c); err != nil {
		// fosite checks PKCE only when it issues the code; refuse before
		// the user signs in for a request that cannot succeed.
		p.fosite.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	csrf := p.csrfCookie(w, r)

	if action != "" && !p.validCSRF(csrf, r.URL.RawQuery, form["csrf"]) {
		http.Error(w, "The form has expired or did not come from this page. Go back and try again.", http.StatusForbidden)
		return
	}

	if p.cfg.Login != nil {
		p.authorizeWith(w, r, ar, c, csrf, action, form)
		return
	}
	user := p.currentUser(ctx, r)
	if action == "login" {
		_, err := p.SignIn(w, r, form["domain_prefix"], form["email"], form["password"])
		var blocked *SignInBlockedError
		switch {
		case errors.As(err, &blocked):
			p.renderLogin(w, r, csrf, c, form, blocked.Error(), http.StatusTooManyRequests)
		case errors.Is(err, storage.ErrNotFound):
			p.renderLogin(w, r, csrf, c, form, "The organisation, email or password is not right.", http.StatusUnauthorized)
		case apierror.From(err).Status == http.StatusServiceUnavailable:
			p.log.Error("sign-in unavailable", "err", err)
			w.Header().Set("Retry-After", "5")
			p.renderLogin(w, r, csrf, c, form, "Signing in is unavailable for a moment. Try again in a few seconds.", http.StatusServiceUnavailable)
		case err != nil:
			p.log.Error("sign-in failed", "err", err)
			http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		default:
			http.Redirect(w, r, r.URL.Path+"?"+r.URL.RawQuery, http.StatusSeeOther)
		}
		return
	}
	if user == nil {
		p.renderLogin(w, r, csrf, c, map[string]string{}, "", http.StatusOK)
		return
	}

	p.consent(w, r, ar, c, csrf, user, action, form)
}

// stateless drops the empty state fosite adds to every redirect to the
// client, for a request that sent none (Config.AllowMissingState): the
// client gets back what TidyHQ's documentation shows, ?code=… alone.
type stateless struct{ http.ResponseWriter }

func (s stateless) WriteHeader(code int) {
	h := s.Header()
	if loc := h.Get("Location"); loc != "" {
		h.Set("Location", withoutEmptyState(loc))
	}
	s.ResponseWriter.WriteHeader(code)
}

// withoutEmptyState removes an empty state parameter from the query and
// the fragment of a URL, byte for byte keeping the rest.
func withoutEmptyState(u string) string {
	rest, frag, hasFrag := strings.Cut(u, "#")
	base, query, hasQuery := strings.Cut(rest, "?")
	drop := func(params string) string {
		kept := []string{}
		for _, p := range strings.Split(params, "&") {
			if p != "state=" && p != "state" {
				kept = append(kept, p)
			}
		}
		return strings.Join(kept, "&")
	}
	out := base
	if hasQuery {
		if query = drop(query); query != "" {
			out += "?" + query
		}
	}
	if hasFrag {
		out += "#" + drop(frag)
	}
	return out
}

// authorizeWith is the authorization flow with an application's own
// LoginProvider.
func (p *Provider) authorizeWith(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, c *client, csrf, action string, form map[string]string) {
	user, err := p.cfg.Login.User(r)
	if err != nil {
		p.log.Error("login provider failed", "err", err)
		http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
		return
	}
	if user == nil {
		p.cfg.Login.SignIn(w, r, r.URL.Path+"?"+r.URL.RawQuery)
		return
	}
	p.consent(w, r, ar, c, csrf, user, action, form)
}

// consent asks (or, by policy or remembered consent, does not ask) the
// signed-in user to allow the client the requested scopes.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, c *client, csrf string, user *storage.User, action string, form map[string]string) {
	ctx := r.Context()
	requested := scope.Set(ar.GetRequestedScopes())
	if len(requested) == 0 {
		requested = scope.Set(c.GetScopes())
	}
	if action == "" && p.cfg.Consent != nil {
		skip, err := p.cfg.Consent.Skip(ctx, user, c.GetID(), requested)
		if err != nil {
			p.log.Error("consent policy failed", "err", err)
			http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
			return
		}
		if skip {
			p.finishAuthorize(ctx, w, ar, user, requested)
			return
		}
	}
	switch action {
	case "deny":
		p.fosite.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	case "allow":
		if form["remember"] == "on" {
			p.remember(ctx, user.ID, c.GetID(), requested)
		}
		p.finishAuthorize(ctx, w, ar, user, requested)
		return
	}
	if prior, err := p.store.GetConsent(ctx, user.ID, c.GetID()); err == nil && len(scope.Set(requested).Minus(scope.MustSet(prior.Scopes...))) == 0 {
		p.finishAuthorize(ctx, w, ar, user, requested)
		return
	}
	p.renderConsent(w, r, csrf, c, user, requested)
}

// remember adds scopes to what the user allowed the client before: a
// consent remembered for other scopes stands beside it, so an application
// that asks for more later (incremental authorization) does not make the
// user allow again what they allowed once. Two consents saved at the same
// moment may keep only one of them; the user is then asked once more.
func (p *Provider) remember(ctx context.Context, subject, clientID string, scopes scope.Set) {
	all := scopes
	prior, err := p.store.GetConsent(ctx, subject, clientID)
	switch {
	case err == nil:
		if had, err := scope.NewSet(prior.Scopes...); err == nil {
			all = had.Union(scopes)
		}
	case !errors.Is(err, storage.ErrNotFound):
		p.log.Error("reading consent failed", "err", err)
		return
	}
	if err := p.store.SaveConsent(ctx, &storage.Consent{Subject: subject, ClientID: clientID, Scopes: all, GrantedAt: time.Now().UTC()}); err != nil {
		p.log.Error("saving consent failed", "err", err)
	}
}

// checkPKCE applies fosite's PKCE rules up front: S256 only, and required
// for public clients.
func checkPKCE(ar fosite.AuthorizeRequester, c *client) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && method == "" && !c.IsPublic():
		return nil
	case challenge == "":
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge when performing the authorize code flow (PKCE is required for public clients).")
	case method != "S256":
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256; plain is not allowed.")
	case !isS256Challenge(challenge):
		return fosite.ErrInvalidRequest.WithHint("The code_challenge must be the base64url encoding of a SHA-256 digest: 43 characters of A-Z, a-z, 0-9, - and _ (RFC 7636 §4.2).")
	}
	return nil
}

// isS256Challenge reports whether c can be BASE64URL(SHA256(verifier)):
// no verifier matches any other challenge, so a code issued for one could
// never be exchanged.
func isS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if (b < 'A' || b > 'Z') && (b < 'a' || b > 'z') && (b < '0' || b > '9') && b != '-' && b != '_' {
			return false
		}
	}
	return true
}

func (p *Provider) finishAuthorize(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, u *storage.User, granted scope.Set) {
	for _, s := range granted {
		ar.GrantScope(s)
	}
	sess := &Session{Subject: u.ID, Organisation: u.OrganisationID, Username: u.Email, ClientID: ar.GetClient().GetID()}
	if p.cfg.JWTKeys != nil {
		ar.GrantAudience(p.cfg.JWTAudience)
	}
	resp, err := p.fosite.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.logFositeError("authorize response", err)
		p.fosite.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.fosite.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// ---- cookies

func (p *Provider) mac(parts ...string) string {
	m := hmac.New(sha256.New, p.cookie)
	for _, s := range parts {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) secureCookies(r *http.Request) bool { return r.TLS != nil || !p.cfg.InsecureCookies }

func (p *Provider) csrfCookie(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CookieCSRF); err == nil && len(c.Value) == 22 {
		return c.Value
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: CookieCSRF, Value: v, Path: PathAuthorize, HttpOnly: true, Secure: p.secureCookies(r), SameSite: http.SameSiteLaxMode})
	return v
}

func (p *Provider) csrfToken(csrf, query string) string { return p.mac("csrf", csrf, query) }

func (p *Provider) validCSRF(csrf, query, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.csrfToken(csrf, query))) == 1
}

// SignInBlockedError is SignIn's answer while an account or an address
// has failed too often.
type SignInBlockedError struct{ Wait time.Duration }

func (e *SignInBlockedError) Error() string {
	return "Too many failed attempts. Try again in " + strconv.Itoa(int(e.Wait.Seconds())+1) + " seconds."
}

// SignIn checks a user's organisation (domain prefix), email and password
// and, when they are right, starts the session that the authorization
// pages and an application's own pages (such as a developer dashboard)
// share: a random 256-bit session id in an HttpOnly, SameSite=Lax cookie,
// stored server-side (as a storage.KindSession token, by its keyed hash)
// so that SignOut and SignOutEverywhere end it on every instance.
// Failures are limited per account and per client address
// (Config.LoginAttempts, Config.LoginAttemptsPerIP, counted in
// Config.LoginLimiter): while blocked it returns *SignInBlockedError
// without checking the password. When the limiter or the store fails it
// returns their error, which reports Unavailable() true (apierror answers
// it 503). Wrong
// credentials of any kind are storage.ErrNotFound, in the same time.
func (p *Provider) SignIn(w http.ResponseWriter, r *http.Request, domainPrefix, email, password string) (*storage.User, error) {
	ip := p.cfg.ClientIP(r)
	account := storage.NormalizePrefix(domainPrefix) + "/" + storage.NormalizeEmail(email)
	wait, err := p.blocked(r.Context(), account, ip)
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, &SignInBlockedError{Wait: wait}
	}
	u, _, err := p.verifyUser(r.Context(), domainPrefix, email, password, ip)
	if err != nil {
		return nil, err
	}
	if err := p.setSession(w, r, u); err != nil {
		return nil, err
	}
	return u, nil
}

// SignedIn returns the user of the session SignIn started, or nil when
// there is none, it has ended or it has expired.
func (p *Provider) SignedIn(r *http.Request) *storage.User { return p.currentUser(r.Context(), r) }

// SignOut ends the session of this browser, on every instance, and clears
// its cookie.
func (p *Provider) SignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieSession); err == nil && c.Value != "" {
		err := p.store.DeactivateToken(r.Context(), storage.KindSession, p.sessionSignature(c.Value))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.log.Error("ending a session failed", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieSession, Value: "", Path: "/", HttpOnly: true, Secure: p.secureCookies(r), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// SignOutEverywhere ends every session of a user, for instance after a
// password change. It returns how many it ended.
func (p *Provider) SignOutEverywhere(ctx context.Context, userID string) (int, error) {
	n, err := p.store.DeactivateTokensByRequest(ctx, storage.KindSession, userID)
	if err != nil {
		return 0, fmt.Errorf("oauth: sign out everywhere: %w", err)
	}
	return n, nil
}

// sessionSignature is how a session id is stored: keyed with the
// provider's secret, so the store never holds a usable session id.
func (p *Provider) sessionSignature(id string) string { return p.mac("session", id) }

func (p *Provider) setSession(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now().UTC()
	// RequestID groups a user's sessions, for SignOutEverywhere.
	err := p.store.CreateToken(r.Context(), &storage.Token{Kind: storage.KindSession, Signature: p.sessionSignature(id), RequestID: u.ID,
		Subject: u.ID, OrganisationID: u.OrganisationID, RequestedAt: now, ExpiresAt: now.Add(sessionLifetime), Active: true})
	if err != nil {
		return fmt.Errorf("oauth: start session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieSession, Value: id, Path: "/", HttpOnly: true, Secure: p.secureCookies(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionLifetime.Seconds())})
	return nil
}

// currentUser returns the signed-in user, or nil.
func (p *Provider) currentUser(ctx context.Context, r *http.Request) *storage.User {
	c, err := r.Cookie(CookieSession)
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url
		return nil
	}
	t, err := p.store.GetToken(ctx, storage.KindSession, p.sessionSignature(c.Value))
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.log.Error("reading a session failed", "err", err)
		}
		return nil
	}
	if !t.Active || !time.Now().Before(t.ExpiresAt) {
		return nil
	}
	u, err := p.store.GetUser(ctx, t.Subject)
	if err != nil {
		return nil
	}
	return u
}

// ---- pages

type scopeLine struct{ Name, Description string }

type pageData struct {
	Title, Action, CSRF, Error string
	ClientName                 string
	Form                       map[string]string
	User                       string
	Scopes                     []scopeLine
}

func (p *Provider) renderLogin(w http.ResponseWriter, r *http.Request, csrf string, c *client, form map[string]string, msg string, status int) {
	delete(form, "password")
	p.render(w, status, "login", pageData{Title: "Sign in", Action: r.URL.Path + "?" + r.URL.RawQuery, CSRF: p.csrfToken(csrf, r.URL.RawQuery),
		Error: msg, ClientName: c.c.Name, Form: form})
}

func (p *Provider) renderConsent(w http.ResponseWriter, r *http.Request, csrf string, c *client, u *storage.User, requested scope.Set) {
	var lines []scopeLine
	for _, s := range requested {
		d := "Access " + s
		if e, ok := p.catalog.Lookup(s); ok && e.Description != "" {
			d = e.Description
		}
		lines = append(lines, scopeLine{Name: s, Description: d})
	}
	slices.SortStableFunc(lines, func(a, b scopeLine) int { return strings.Compare(a.Name, b.Name) })
	p.render(w, http.StatusOK, "consent", pageData{Title: "Allow access", Action: r.URL.Path + "?" + r.URL.RawQuery, CSRF: p.csrfToken(csrf, r.URL.RawQuery),
		ClientName: c.c.Name, User: u.Email, Scopes: lines})
}

func (p *Provider) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		p.log.Error("rendering page failed", "page", name, "err", err)
	}
}

var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2430;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.08);padding:32px 36px;width:100%;max-width:420px}
h1{font-size:22px;margin:0 0 4px}p.sub{color:#5b6472;margin:0 0 24px}
label{display:block;font-weight:600;margin:16px 0 6px}input[type=text],input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:10px 12px;border:1px solid #c9ced6;border-radius:8px;font-size:16px}
button{padding:10px 18px;border-radius:8px;border:0;font-size:16px;font-weight:600;cursor:pointer}
.primary{background:#2456d8;color:#fff}.secondary{background:#e8ebf0;color:#1d2430}
.row{display:flex;gap:12px;margin-top:24px}.error{background:#fdecec;color:#9b1c1c;padding:10px 12px;border-radius:8px;margin-bottom:8px}
ul.scopes{list-style:none;padding:0;margin:16px 0}ul.scopes li{padding:10px 0;border-bottom:1px solid #eef0f3}ul.scopes code{font-size:13px;color:#5b6472}
.remember{display:flex;gap:8px;align-items:center;margin-top:16px;font-weight:400}
</style></head><body><main>{{end}}
{{define "login"}}{{template "head" .}}
<h1>Sign in</h1><p class="sub">to continue to <strong>{{.ClientName}}</strong></p>
{{if .Error}}<div class="error" role="alert">{{.Error}}</div>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="action" value="login">
<label for="domain_prefix">Organisation</label><input type="text" id="domain_prefix" name="domain_prefix" value="{{index .Form "domain_prefix"}}" autocomplete="organization" required>
<label for="email">Email</label><input type="email" id="email" name="email" value="{{index .Form "email"}}" autocomplete="username" required>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="row"><button class="primary" type="submit">Sign in</button></div>
</form></main></body></html>{{end}}
{{define "consent"}}{{template "head" .}}
<h1>Allow {{.ClientName}}?</h1><p class="sub">Signed in as {{.User}}. <strong>{{.ClientName}}</strong> asks to:</p>
<ul class="scopes">{{range .Scopes}}<li>{{.Description}}<br><code>{{.Name}}</code></li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label class="remember"><input type="checkbox" name="remember" checked> Remember this decision</label>
<div class="row"><button class="primary" type="submit" name="action" value="allow">Allow</button>
<button class="secondary" type="submit" name="action" value="deny">Deny</button></div>
</form></main></body></html>{{end}}
`))
