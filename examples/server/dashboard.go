package main

import (
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/webhook"
)

//go:embed web
var webFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"has":   func(list []string, s string) bool { return slices.Contains(list, s) },
}).ParseFS(webFS, "web/*.html"))

// The developer dashboard: Tiquo's "Settings > API Access" and TidyHQ's
// "Applications". Server-rendered pages behind the sign-in that the OAuth
// pages share; every form posts same-origin (http.CrossOriginProtection)
// with SameSite=Lax session cookies.

const rotateGrace = 24 * time.Hour

type dashboardPage struct {
	Title, Section string
	User           *storage.User
	Error, Notice  string
	// Shown once: a new key, or a new client's id and secret.
	NewKey, NewClientID, NewClientSecret string
	Scopes                               []scopeChoice
	Keys                                 []keyRow
	Apps                                 []*storage.Client
	Connected                            []oauth.ConnectedApp
	Hooks                                []hookRow
	Form                                 url.Values
	Next                                 string
	Grants                               []string
}

type scopeChoice struct{ Name, Description string }

type keyRow struct {
	*storage.APIKey
	Status   string
	Requests int64
}

type hookRow struct {
	*storage.Subscription
	Deliveries []*storage.Delivery
}

// dashboard returns the handler of /dashboard/ and /docs.
func (a *app) dashboard(doc *openAPIDoc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dashboard/login", a.loginPage)
	mux.HandleFunc("POST /dashboard/login", a.login)
	mux.HandleFunc("POST /dashboard/logout", func(w http.ResponseWriter, r *http.Request) {
		a.provider.SignOut(w, r)
		http.Redirect(w, r, "/dashboard/login", http.StatusSeeOther)
	})
	mux.Handle("GET /dashboard/static/", http.StripPrefix("/dashboard/static/", http.FileServerFS(mustSub(webFS, "web/static"))))
	mux.HandleFunc("GET /dashboard/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard/keys", http.StatusSeeOther)
	})
	signed := func(h func(http.ResponseWriter, *http.Request, *storage.User)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			u := a.provider.SignedIn(r)
			if u == nil {
				http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			h(w, r, u)
		}
	}
	mux.HandleFunc("GET /dashboard/keys", signed(a.keysPage))
	mux.HandleFunc("POST /dashboard/keys", signed(a.createKey))
	mux.HandleFunc("POST /dashboard/keys/{id}/rotate", signed(a.rotateKey))
	mux.HandleFunc("POST /dashboard/keys/{id}/revoke", signed(a.revokeKey))
	mux.HandleFunc("POST /dashboard/keys/{id}/update", signed(a.updateKey))
	mux.HandleFunc("GET /dashboard/apps", signed(a.appsPage))
	mux.HandleFunc("POST /dashboard/apps", signed(a.createApp))
	mux.HandleFunc("POST /dashboard/apps/{id}/delete", signed(a.deleteApp))
	mux.HandleFunc("POST /dashboard/apps/{id}/rotate", signed(a.rotateApp))
	mux.HandleFunc("POST /dashboard/apps/{id}/update", signed(a.updateApp))
	mux.HandleFunc("POST /dashboard/connected/{id}/disconnect", signed(a.disconnectApp))
	mux.HandleFunc("GET /dashboard/webhooks", signed(a.hooksPage))
	mux.HandleFunc("POST /dashboard/webhooks/{id}/deliveries/{delivery}/redeliver", signed(a.hookAction("redelivery", a.dashboardRedeliver)))
	mux.HandleFunc("POST /dashboard/webhooks/{id}/test", signed(a.hookAction("test", func(r *http.Request, s *storage.Subscription) error {
		_, err := a.hooks.SendTest(r.Context(), s.ID)
		return err
	})))
	mux.HandleFunc("POST /dashboard/webhooks/{id}/enable", signed(a.hookAction("enabled", func(r *http.Request, s *storage.Subscription) error {
		on := true // once its owner has mended the endpoint
		_, err := a.hooks.Update(r.Context(), s.ID, webhook.SubscriptionUpdate{Enabled: &on})
		return err
	})))
	mux.HandleFunc("POST /dashboard/explorer-key", signed(a.explorerKey))
	mux.HandleFunc("GET /docs", a.docsPage(doc))
	mux.HandleFunc("GET /callback", a.callbackPage)
	mux.HandleFunc("/dashboard/", func(w http.ResponseWriter, r *http.Request) {
		a.render(w, http.StatusNotFound, "notfound", dashboardPage{Title: "Not found", User: a.provider.SignedIn(r)})
	})
	var h http.Handler = mux
	h = http.NewCrossOriginProtection().Handler(h)
	return pageHeaders(h)
}

// pageHeaders sets the headers every HTML page of the dashboard carries:
// no framing, no inline script, nothing cached, no referrer.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.HasPrefix(r.URL.Path, "/dashboard/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func (a *app) render(w http.ResponseWriter, status int, name string, p dashboardPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplates.ExecuteTemplate(w, name, p); err != nil {
		a.log.Error("rendering page failed", "page", name, "err", err)
	}
}

// pageError answers a failed dashboard action: user errors re-render the
// page with the message; ours are logged and shown as a generic failure.
func (a *app) pageError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierror.From(err)
	if e.Status >= 500 {
		a.log.Error("dashboard action failed", "path", r.URL.Path, "err", err, "request_id", apierror.RequestIDFromContext(r.Context()))
		a.render(w, e.Status, "error", dashboardPage{Title: "Something went wrong", Error: "Something went wrong on our side. Try again shortly.", User: a.provider.SignedIn(r)})
		return
	}
	a.render(w, e.Status, "error", dashboardPage{Title: "Not possible", Error: e.Message, User: a.provider.SignedIn(r)})
}

// safeNext keeps a post-sign-in destination on the dashboard or the docs.
func safeNext(next string) string {
	if (strings.HasPrefix(next, "/dashboard/") || next == "/docs") && !strings.Contains(next, "//") && !strings.Contains(next, `\`) {
		return next
	}
	return "/dashboard/keys"
}

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	if a.provider.SignedIn(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	a.render(w, http.StatusOK, "login", dashboardPage{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next")), Form: url.Values{}})
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.render(w, http.StatusBadRequest, "login", dashboardPage{Title: "Sign in", Error: "The form could not be read.", Form: url.Values{}})
		return
	}
	f := r.PostForm
	page := dashboardPage{Title: "Sign in", Next: safeNext(f.Get("next")), Form: url.Values{"domain_prefix": {f.Get("domain_prefix")}, "email": {f.Get("email")}}}
	_, err := a.provider.SignIn(w, r, f.Get("domain_prefix"), f.Get("email"), f.Get("password"))
	var blocked *oauth.SignInBlockedError
	switch {
	case errors.As(err, &blocked):
		page.Error = blocked.Error()
		a.render(w, http.StatusTooManyRequests, "login", page)
	case errors.Is(err, storage.ErrNotFound):
		page.Error = "The organisation, email or password is not right."
		a.render(w, http.StatusUnauthorized, "login", page)
	case apierror.From(err).Status == http.StatusServiceUnavailable:
		// The store or the sign-in limiter is down: no password was
		// checked. The form again, to retry, rather than an error page.
		a.log.Error("dashboard sign-in unavailable", "err", err, "request_id", apierror.RequestIDFromContext(r.Context()))
		w.Header().Set("Retry-After", "5")
		page.Error = "Signing in is unavailable for a moment. Try again in a few seconds."
		a.render(w, http.StatusServiceUnavailable, "login", page)
	case err != nil:
		a.pageError(w, r, err)
	default:
		http.Redirect(w, r, page.Next, http.StatusSeeOther)
	}
}

// form reads a dashboard form of at most 16 KiB; false when it answered.
func (a *app) form(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.pageError(w, r, apierror.InvalidRequest("The form could not be read", "", ""))
		return nil, false
	}
	for k, vs := range r.PostForm {
		for _, v := range vs {
			if !storage.ValidText(k) || !storage.ValidText(v) {
				a.pageError(w, r, apierror.InvalidRequest("The form has text that cannot be saved: use UTF-8 text without NUL characters.", "", ""))
				return nil, false
			}
		}
	}
	return r.PostForm, true
}

func (a *app) scopeChoices() []scopeChoice {
	var out []scopeChoice
	for _, s := range a.catalog.Scopes() {
		out = append(out, scopeChoice{s.Name, s.Description})
	}
	return out
}

// ---- API keys

func (a *app) keysPage(w http.ResponseWriter, r *http.Request, u *storage.User) {
	a.renderKeys(w, r, u, dashboardPage{Form: url.Values{"environment": {"test"}}})
}

func (a *app) renderKeys(w http.ResponseWriter, r *http.Request, u *storage.User, p dashboardPage) {
	keys, _, err := a.keys.List(r.Context(), u.OrganisationID, storage.Page{Limit: 200})
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	now := time.Now()
	since := now.Add(-30 * 24 * time.Hour)
	// The store's counters directly: Manager.Usage would read each key again.
	for i := len(keys) - 1; i >= 0; i-- { // newest first
		k := keys[i]
		row := keyRow{APIKey: k, Status: "active"}
		switch {
		case !k.RevokedAt.IsZero():
			row.Status = "revoked"
		case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
			row.Status = "expired"
		case !k.ExpiresAt.IsZero():
			row.Status = "expires " + k.ExpiresAt.UTC().Format("2006-01-02 15:04")
		}
		if _, days, err := a.store.APIKeyUsage(r.Context(), k.ID, since); err == nil {
			for _, d := range days {
				row.Requests += d.Requests
			}
		}
		p.Keys = append(p.Keys, row)
	}
	p.Title, p.Section, p.User, p.Scopes = "API keys", "keys", u, a.scopeChoices()
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	a.render(w, status, "keys", p)
}

var expiryChoices = map[string]time.Duration{"": 0, "1h": time.Hour, "30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "365d": 365 * 24 * time.Hour}

func (a *app) createKey(w http.ResponseWriter, r *http.Request, u *storage.User) {
	f, ok := a.form(w, r)
	if !ok {
		return
	}
	p := dashboardPage{Form: f}
	expiry, okExpiry := expiryChoices[f.Get("expires")]
	env := gatehouse.Environment(f.Get("environment"))
	switch {
	case strings.TrimSpace(f.Get("name")) == "" || len(f.Get("name")) > 100:
		p.Error = "Name the key (1 to 100 characters)."
	case len(f["scope"]) == 0:
		p.Error = "Choose at least one scope."
	case !env.Valid():
		p.Error = "Choose the test or the live environment."
	case !okExpiry:
		p.Error = "Choose an expiry from the list."
	}
	if p.Error != "" {
		a.renderKeys(w, r, u, p)
		return
	}
	params := apikey.CreateParams{OrganisationID: u.OrganisationID, OwnerID: u.ID, Name: strings.TrimSpace(f.Get("name")), Scopes: f["scope"], Environment: env}
	if expiry > 0 {
		params.ExpiresAt = time.Now().Add(expiry)
	}
	secret, _, err := a.keys.Create(r.Context(), params)
	if fe := (*apikey.FieldError)(nil); errors.As(err, &fe) {
		p.Error = fieldIssue(fe.Field, fe.Issue)
		a.renderKeys(w, r, u, p)
		return
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	a.renderKeys(w, r, u, dashboardPage{NewKey: secret.Reveal(), Notice: "Key created. Copy it now: it is shown only once.", Form: url.Values{"environment": {"test"}}})
}

// ownKey loads a key of the user's organisation; any other is a 404.
func (a *app) ownKey(r *http.Request, u *storage.User) (*storage.APIKey, error) {
	id := r.PathValue("id")
	if len(id) > 64 {
		return nil, apierror.NotFound("key")
	}
	k, err := a.keys.Get(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && k.OrganisationID != u.OrganisationID) {
		return nil, apierror.NotFound("key")
	}
	return k, err
}

func (a *app) rotateKey(w http.ResponseWriter, r *http.Request, u *storage.User) {
	k, err := a.ownKey(r, u)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	secret, _, err := a.keys.Rotate(r.Context(), k.ID, rotateGrace)
	if fe := (*apikey.FieldError)(nil); errors.As(err, &fe) {
		// Pressed twice, or the key was revoked meanwhile.
		a.renderKeys(w, r, u, dashboardPage{Error: "The " + fe.Field + " " + fe.Issue + ".", Form: url.Values{"environment": {"test"}}})
		return
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	a.renderKeys(w, r, u, dashboardPage{NewKey: secret.Reveal(), Form: url.Values{"environment": {"test"}},
		Notice: "Key rotated. Copy the new key now: it is shown only once. The old key keeps working for 24 hours."})
}

// updateKey changes an active key's name and scopes; a scope taken away
// stops at once, on every instance.
func (a *app) updateKey(w http.ResponseWriter, r *http.Request, u *storage.User) {
	k, err := a.ownKey(r, u)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	f, ok := a.form(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(f.Get("name"))
	var msg string
	switch {
	case name == "" || len(name) > 100:
		msg = "Name the key (1 to 100 characters)."
	case len(f["scope"]) == 0:
		msg = "Choose at least one scope."
	case !k.RevokedAt.IsZero():
		msg = "The key is revoked: it cannot be changed."
	}
	if msg == "" {
		k, err = a.keys.Update(r.Context(), k.ID, apikey.UpdateParams{Name: &name, Scopes: f["scope"]})
		if fe := (*apikey.FieldError)(nil); errors.As(err, &fe) {
			msg, err = fieldIssue(fe.Field, fe.Issue), nil
		}
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	if msg != "" {
		a.renderKeys(w, r, u, dashboardPage{Error: msg, Form: url.Values{"environment": {"test"}}})
		return
	}
	a.renderKeys(w, r, u, dashboardPage{Notice: "Key " + k.Name + " updated. A scope taken away stops at once.", Form: url.Values{"environment": {"test"}}})
}

func (a *app) revokeKey(w http.ResponseWriter, r *http.Request, u *storage.User) {
	k, err := a.ownKey(r, u)
	if err == nil {
		_, err = a.keys.Revoke(r.Context(), k.ID)
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/dashboard/keys", http.StatusSeeOther)
}

// explorerKey creates a one-hour sandbox key with every scope for the API
// explorer at /docs, and answers it as JSON.
func (a *app) explorerKey(w http.ResponseWriter, r *http.Request, u *storage.User) {
	var all []string
	for _, s := range a.catalog.Scopes() {
		all = append(all, s.Name)
	}
	exp := time.Now().Add(time.Hour)
	secret, _, err := a.keys.Create(r.Context(), apikey.CreateParams{OrganisationID: u.OrganisationID, OwnerID: u.ID, Name: "API explorer (1 hour)",
		Scopes: all, Environment: gatehouse.Test, ExpiresAt: exp})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"key": secret.Reveal(), "expires_at": exp.UTC().Format(time.RFC3339)})
}

// ---- applications (OAuth clients)

var grantChoices = []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantImplicit, oauth.GrantPassword, oauth.GrantClientCredentials}

func (a *app) appsPage(w http.ResponseWriter, r *http.Request, u *storage.User) {
	a.renderApps(w, r, u, dashboardPage{Form: url.Values{"type": {"confidential"}, "grant": {oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}}})
}

func (a *app) renderApps(w http.ResponseWriter, r *http.Request, u *storage.User, p dashboardPage) {
	apps, _, err := a.store.ListClients(r.Context(), u.OrganisationID, storage.Page{Limit: 200})
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	slices.Reverse(apps)
	connected, err := a.provider.ConnectedApps(r.Context(), u.ID)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	p.Title, p.Section, p.User, p.Apps, p.Connected, p.Scopes, p.Grants = "Applications", "apps", u, apps, connected, a.scopeChoices(), grantChoices
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	a.render(w, status, "apps", p)
}

func (a *app) createApp(w http.ResponseWriter, r *http.Request, u *storage.User) {
	f, ok := a.form(w, r)
	if !ok {
		return
	}
	p := dashboardPage{Form: f, Error: appFormError(f)}
	if p.Error == "" && f.Get("type") != "confidential" && f.Get("type") != "public" {
		p.Error = "Choose confidential or public."
	}
	if p.Error != "" {
		a.renderApps(w, r, u, p)
		return
	}
	secret, c, err := a.provider.RegisterClient(r.Context(), oauth.ClientParams{OrganisationID: u.OrganisationID, Name: strings.TrimSpace(f.Get("name")),
		RedirectURIs: redirectLines(f), Grants: f["grant"], Scopes: f["scope"], Public: f.Get("type") == "public"})
	if fe := (*oauth.FieldError)(nil); errors.As(err, &fe) {
		p.Error = fieldIssue(fe.Field, fe.Issue)
		a.renderApps(w, r, u, p)
		return
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	notice := "Application created. Copy the client secret now: it is shown only once."
	if secret == "" {
		notice = "Public application created: it has no secret and must use PKCE."
	}
	a.renderApps(w, r, u, dashboardPage{NewClientID: c.ID, NewClientSecret: secret, Notice: notice,
		Form: url.Values{"type": {"confidential"}, "grant": {oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}}})
}

// appFormError checks what the create and edit forms of an application
// share, and returns what to tell the user ("" when nothing).
func appFormError(f url.Values) string {
	switch {
	case strings.TrimSpace(f.Get("name")) == "" || len(f.Get("name")) > 100:
		return "Name the application (1 to 100 characters)."
	case len(f["scope"]) == 0:
		return "Choose at least one scope."
	case len(f["grant"]) == 0:
		return "Choose at least one grant."
	}
	return ""
}

// redirectLines returns the redirect URIs of the form, one per line.
func redirectLines(f url.Values) []string {
	uris := []string{}
	for _, line := range strings.Split(f.Get("redirect_uris"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			uris = append(uris, line)
		}
	}
	return uris
}

// fieldIssue says what is wrong with a form's field, as an
// *oauth.FieldError or *apikey.FieldError names it.
func fieldIssue(field, issue string) string {
	return "The " + strings.ReplaceAll(field, "_", " ") + " " + issue + "."
}

// updateApp changes an application's name, redirect URIs, grants and
// scopes; a scope taken away stops at once in the tokens it holds.
func (a *app) updateApp(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c, err := a.ownClient(r, u)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	f, ok := a.form(w, r)
	if !ok {
		return
	}
	if msg := appFormError(f); msg != "" {
		a.renderApps(w, r, u, dashboardPage{Error: msg, Form: url.Values{"type": {"confidential"}}})
		return
	}
	name := strings.TrimSpace(f.Get("name"))
	c, err = a.provider.UpdateClient(r.Context(), c.ID, oauth.ClientUpdate{Name: &name, RedirectURIs: redirectLines(f), Grants: f["grant"], Scopes: f["scope"]})
	if fe := (*oauth.FieldError)(nil); errors.As(err, &fe) {
		a.renderApps(w, r, u, dashboardPage{Error: fieldIssue(fe.Field, fe.Issue), Form: url.Values{"type": {"confidential"}}})
		return
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	a.renderApps(w, r, u, dashboardPage{Notice: "Application " + c.Name + " updated. A scope taken away stops at once in the tokens it holds.",
		Form: url.Values{"type": {"confidential"}, "grant": {oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}}})
}

// ownClient returns the application the path's id names when it is one
// of u's organisation's; any other is a 404, as one that does not exist.
func (a *app) ownClient(r *http.Request, u *storage.User) (*storage.Client, error) {
	c, err := a.store.GetClient(r.Context(), r.PathValue("id"))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.OrganisationID != u.OrganisationID) {
		return nil, apierror.NotFound("application")
	}
	return c, err
}

// disconnectApp ends what the signed-in user granted an application (of
// any organisation: the user's own grant is theirs to revoke).
func (a *app) disconnectApp(w http.ResponseWriter, r *http.Request, u *storage.User) {
	if _, err := a.provider.Disconnect(r.Context(), u.ID, r.PathValue("id")); err != nil {
		a.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/dashboard/apps", http.StatusSeeOther)
}

// rotateApp gives a confidential application a new secret, shown once;
// the old one keeps working for a day, so its deployments can move over.
func (a *app) rotateApp(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c, err := a.ownClient(r, u)
	var secret string
	if err == nil {
		secret, c, err = a.provider.RotateClientSecret(r.Context(), c.ID, 24*time.Hour)
	}
	if fe := (*oauth.FieldError)(nil); errors.As(err, &fe) {
		err = apierror.InvalidRequest("A public application has no secret to rotate", "", "")
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	a.renderApps(w, r, u, dashboardPage{NewClientID: c.ID, NewClientSecret: secret,
		Notice: "New secret issued. Copy it now: it is shown only once. The previous secret keeps working until " + c.PreviousSecretExpiresAt.Format("2 Jan 2006 15:04 MST") + ".",
		Form:   url.Values{"type": {"confidential"}, "grant": {oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}}})
}

func (a *app) deleteApp(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c, err := a.ownClient(r, u)
	if err == nil {
		// Its tokens stop working with it, on every instance at once.
		err = a.provider.DeleteClient(r.Context(), c.ID)
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/dashboard/apps", http.StatusSeeOther)
}

// ---- webhooks

func (a *app) hooksPage(w http.ResponseWriter, r *http.Request, u *storage.User) {
	subs, err := a.store.ListSubscriptions(r.Context(), u.OrganisationID)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	p := dashboardPage{Title: "Webhooks", Section: "webhooks", User: u}
	p.Notice = hookNotices[r.URL.Query().Get("notice")]
	for _, s := range subs {
		ds, err := a.store.ListDeliveries(r.Context(), s.ID, storage.Page{Limit: 10})
		if err != nil {
			a.pageError(w, r, err)
			return
		}
		p.Hooks = append(p.Hooks, hookRow{Subscription: s, Deliveries: ds})
	}
	a.render(w, http.StatusOK, "webhooks", p)
}

// hookNotices are what the webhooks page says after each of its actions.
var hookNotices = map[string]string{
	"redelivery": "Redelivery queued.",
	"test":       "Test event queued: it appears below once sent.",
	"enabled":    "Subscription enabled again: events from now on are delivered to it.",
}

// hookAction serves a button of the webhooks page: act on the user's
// subscription the path names, then back to the page with notice.
func (a *app) hookAction(notice string, act func(*http.Request, *storage.Subscription) error) func(http.ResponseWriter, *http.Request, *storage.User) {
	return func(w http.ResponseWriter, r *http.Request, u *storage.User) {
		s, err := a.ownSubscription(r, u)
		if err == nil {
			err = act(r, s)
		}
		if err != nil {
			a.pageError(w, r, err)
			return
		}
		http.Redirect(w, r, "/dashboard/webhooks?notice="+notice, http.StatusSeeOther)
	}
}

// dashboardRedeliver queues the path's delivery of s again.
func (a *app) dashboardRedeliver(r *http.Request, s *storage.Subscription) error {
	did := r.PathValue("delivery")
	if !storage.ValidID(did) {
		return apierror.NotFound("delivery")
	}
	return a.redeliverOf(r.Context(), s, did)
}

// ownSubscription returns the subscription the path's id names when it is
// one of u's organisation's; any other is a 404, as one that does not
// exist.
func (a *app) ownSubscription(r *http.Request, u *storage.User) (*storage.Subscription, error) {
	sid := r.PathValue("id")
	if !storage.ValidID(sid) {
		return nil, apierror.NotFound("webhook")
	}
	s, err := a.store.GetSubscription(r.Context(), sid)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && s.OrganisationID != u.OrganisationID) {
		return nil, apierror.NotFound("webhook")
	}
	return s, err
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // an embedded directory: a programming error
	}
	return sub
}

// ---- API explorer

type docsView struct {
	Page dashboardPage
	Doc  *openAPIDoc
	Tags []docsTag
}

type docsTag struct {
	Name string
	Ops  []docsOp
}

type docsOp struct {
	ID, Method, Path, Summary, Description, Body string
	Params                                       []parameter
	Responses                                    []string
	Tryable, PathParams                          bool
	Samples                                      []codeSample
}

// docsPage renders the explorer from the OpenAPI document: every
// operation with its scope, parameters and responses, code samples in
// four languages, and a form that sends it with the developer's
// credential.
func (a *app) docsPage(doc *openAPIDoc) http.HandlerFunc {
	var tags []docsTag
	for _, t := range doc.Tags {
		tag := docsTag{Name: t.Name}
		doc.operations(func(p, m string, op *openAPIOperation) {
			if op.Tags[0] != t.Name {
				return
			}
			v := docsOp{ID: op.OperationID, Method: strings.ToUpper(m), Path: p, Summary: op.Summary, Description: op.Description,
				Params: op.Parameters, Tryable: strings.HasPrefix(p, "/v1/"),
				PathParams: strings.Contains(p, "{"), Samples: op.CodeSamples}
			for code := range op.Responses {
				v.Responses = append(v.Responses, code)
			}
			slices.Sort(v.Responses)
			if op.RequestBody != nil {
				if mt, ok := op.RequestBody.Content["application/json"]; ok && mt.Example != nil {
					b, _ := json.MarshalIndent(mt.Example, "", "  ")
					v.Body = string(b)
				} else if ok {
					v.Body = "{}"
				}
			}
			tag.Ops = append(tag.Ops, v)
		})
		tags = append(tags, tag)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		v := docsView{Page: dashboardPage{Title: "API docs", Section: "docs", User: a.provider.SignedIn(r)}, Doc: doc, Tags: tags}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTemplates.ExecuteTemplate(w, "docs", v); err != nil {
			a.log.Error("rendering page failed", "page", "docs", "err", err)
		}
	}
}

// ---- the demo application's redirect URI

type callbackView struct {
	Page                            dashboardPage
	Code, State, Error, Description string
	RedirectURI, TokenURL           string
}

// callbackPage is the demo client's redirect URI (issuer + /callback): it
// shows the code (or the error) so that a person trying the flow with
// curl can copy it, and, through callback.js, an implicit grant's token
// from the fragment.
func (a *app) callbackPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := callbackView{Page: dashboardPage{Title: "OAuth callback", User: a.provider.SignedIn(r)},
		Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"), Description: q.Get("error_description"),
		RedirectURI: url.QueryEscape(a.issuer + "/callback"), TokenURL: a.issuer + "/oauth/token"}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplates.ExecuteTemplate(w, "callback", v); err != nil {
		a.log.Error("rendering page failed", "page", "callback", "err", err)
	}
}
