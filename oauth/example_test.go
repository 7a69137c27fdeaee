package oauth_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// Issue a client-credentials token, then accept it on a protected handler.
func Example() {
	ctx := context.Background()
	store := memory.New()
	p, err := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("a secret of at least thirty-two bytes!")})
	if err != nil {
		panic(err)
	}
	secret, client, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Backend",
		Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{scope.BookingsRead}})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/oauth/", p.Handler())
	chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
	mux.Handle("/v1/bookings", chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr := gatehouse.FromContext(r.Context())
		fmt.Fprintf(w, "bookings of %s for client %t", pr.Organisation, pr.ClientID == client.ID)
	})))

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope.BookingsRead}}
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ID, secret)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &tok)
	fmt.Println(w.Code, tok.TokenType, tok.Scope, strings.HasPrefix(tok.AccessToken, "gate_at_"))

	req = httptest.NewRequest("GET", "/v1/bookings", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 bearer bookings:read true
	// 200 bookings of acme for client true
}

// Share the authorization pages' sign-in with an application's own pages.
func ExampleProvider_SignIn() {
	ctx := context.Background()
	store := memory.New()
	_ = store.CreateOrganisation(ctx, &storage.Organisation{ID: "org-1", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	p, _ := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("a secret of at least thirty-two bytes!"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	_, _ = p.CreateUser(ctx, oauth.UserParams{OrganisationID: "org-1", Email: "ada@example.com", Password: "correct horse battery"})

	// POST /login: SignIn sets the session cookie when the credentials are right.
	w := httptest.NewRecorder()
	_, err := p.SignIn(w, httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "wrong")
	fmt.Println("wrong password:", err != nil)
	w = httptest.NewRecorder()
	u, _ := p.SignIn(w, httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "correct horse battery")
	fmt.Println("signed in:", u.Email)

	// Any later request of that browser.
	page := httptest.NewRequest("GET", "/account", nil)
	for _, c := range w.Result().Cookies() {
		page.AddCookie(c)
	}
	fmt.Println("page sees:", p.SignedIn(page).Email)
	p.SignOut(httptest.NewRecorder(), page)
	fmt.Println("after sign-out:", p.SignedIn(page) == nil)
	// Output:
	// wrong password: true
	// signed in: ada@example.com
	// page sees: ada@example.com
	// after sign-out: true
}

// A separate resource server accepts the provider's JWT access tokens
// with no database: it checks them against the published key set.
func ExampleNewJWTVerifier() {
	ctx := context.Background()
	mux := http.NewServeMux()
	authServer := httptest.NewServer(mux) // the authorization server, at its issuer URL
	defer authServer.Close()
	keys, err := oauth.NewKeySet()
	if err != nil {
		panic(err)
	}
	p, err := oauth.New(memory.New(), oauth.Config{Issuer: authServer.URL, Secret: []byte("a secret of at least thirty-two bytes!"), JWTKeys: keys})
	if err != nil {
		panic(err)
	}
	mux.Handle("/", p.Handler()) // /oauth/token, /.well-known/jwks.json, …
	secret, client, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Backend",
		Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{scope.BookingsRead}})
	res, err := http.PostForm(authServer.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {client.ID}, "client_secret": {secret}})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	// The resource server: only the issuer's URL and its key set.
	verifier, err := oauth.NewJWTVerifier(oauth.VerifierConfig{JWKSURL: authServer.URL + "/.well-known/jwks.json", Issuer: authServer.URL})
	if err != nil {
		panic(err)
	}
	chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, verifier)
	api := chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr := gatehouse.FromContext(r.Context())
		fmt.Fprintf(w, "%s %v", pr.Organisation, pr.Scopes)
	}))
	for _, t := range []string{tok.AccessToken, tok.AccessToken + "x"} { // the token, then a forgery
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		req.Header.Set("Authorization", "Bearer "+t)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body.String())
		} else {
			fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 acme [bookings:read]
	// 401 Bearer realm="api", error="invalid_token", error_description="The access token is not valid: its signature does not verify"
}

// Instances of one deployment share their JWT signing keys: the set is
// made once, exported to wherever the deployment keeps secrets, and
// parsed by every instance at start.
func ExampleParseKeySet() {
	keys, err := oauth.NewKeySet()
	if err != nil {
		panic(err)
	}
	data, err := keys.Export() // a secret: store it as you store the others
	if err != nil {
		panic(err)
	}

	// On every instance, at start:
	loaded, err := oauth.ParseKeySet(data)
	if err != nil {
		panic(err)
	}
	fmt.Println(loaded.SigningKeyID() == keys.SigningKeyID())

	// Rotation across instances: stage, roll the export out, wait for
	// verifiers' JWKS caches (5 minutes), promote, roll out again.
	next, _ := loaded.Stage()
	fmt.Println(loaded.SigningKeyID() == next)
	_ = loaded.Promote(next)
	fmt.Println(loaded.SigningKeyID() == next)
	// Output:
	// true
	// false
	// true
}

// Rotate a client's secret: the new one is shown once, and the old one
// keeps working for a day while the client's deployments move over.
func ExampleProvider_RotateClientSecret() {
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := oauth.New(memory.New(), oauth.Config{Issuer: srv.URL, Secret: []byte("a secret of at least thirty-two bytes!")})
	if err != nil {
		panic(err)
	}
	mux.Handle("/", p.Handler())
	old, client, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Backend", Grants: []string{oauth.GrantClientCredentials}})

	fresh, _, err := p.RotateClientSecret(ctx, client.ID, 24*time.Hour)
	if err != nil {
		panic(err)
	}
	for _, secret := range []string{fresh, old} {
		res, _ := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {client.ID}, "client_secret": {secret}})
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	// Output:
	// 200
	// 200
}

// List the applications a user has authorized, and disconnect one.
func ExampleProvider_ConnectedApps() {
	ctx := context.Background()
	store := memory.New()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := oauth.New(store, oauth.Config{Issuer: srv.URL, Secret: []byte("a secret of at least thirty-two bytes!"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		panic(err)
	}
	mux.Handle("/", p.Handler())
	_ = store.CreateOrganisation(ctx, &storage.Organisation{ID: "acme", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	user, _ := p.CreateUser(ctx, oauth.UserParams{OrganisationID: "acme", Email: "ada@example.com", Password: "correct horse battery"})
	secret, client, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Booking App", Grants: []string{oauth.GrantPassword}})
	res, _ := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"acme"},
		"username": {"ada@example.com"}, "password": {"correct horse battery"}, "client_id": {client.ID}, "client_secret": {secret}})
	res.Body.Close()

	apps, _ := p.ConnectedApps(ctx, user.ID)
	for _, a := range apps {
		fmt.Println(a.Client.Name)
	}
	n, _ := p.Disconnect(ctx, user.ID, client.ID)
	apps, _ = p.ConnectedApps(ctx, user.ID)
	fmt.Println(n > 0, len(apps))
	// Output:
	// Booking App
	// true 0
}

// A client whose refresh response was lost retries with the token it just
// used: with a reuse grace it gets a new pair instead of losing the grant.
func ExampleConfig_refreshReuseGrace() {
	ctx := context.Background()
	store := memory.New()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := oauth.New(store, oauth.Config{Issuer: srv.URL, Secret: []byte("a secret of at least thirty-two bytes!"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}, RefreshReuseGrace: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	mux.Handle("/", p.Handler())
	_ = store.CreateOrganisation(ctx, &storage.Organisation{ID: "acme", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	_, _ = p.CreateUser(ctx, oauth.UserParams{OrganisationID: "acme", Email: "ada@example.com", Password: "correct horse battery"})
	secret, client, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Mobile App",
		Grants: []string{oauth.GrantPassword, oauth.GrantRefreshToken}})
	token := func(form url.Values) (int, string) {
		form.Set("client_id", client.ID)
		form.Set("client_secret", secret)
		res, err := http.PostForm(srv.URL+"/oauth/token", form)
		if err != nil {
			panic(err)
		}
		defer res.Body.Close()
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.RefreshToken
	}
	_, rt := token(url.Values{"grant_type": {"password"}, "domain_prefix": {"acme"}, "username": {"ada@example.com"}, "password": {"correct horse battery"}})
	first, _ := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	retry, _ := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}) // the response to the first was lost
	fmt.Println(first, retry)
	// Output: 200 200
}

// Change a user's password: the old one stops working, and so do the
// sessions opened with it.
func ExampleProvider_SetPassword() {
	ctx := context.Background()
	store := memory.New()
	_ = store.CreateOrganisation(ctx, &storage.Organisation{ID: "org-1", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	p, _ := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("a secret of at least thirty-two bytes!"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	u, _ := p.CreateUser(ctx, oauth.UserParams{OrganisationID: "org-1", Email: "ada@example.com", Password: "correct horse battery"})
	w := httptest.NewRecorder()
	_, _ = p.SignIn(w, httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "correct horse battery")
	page := httptest.NewRequest("GET", "/account", nil)
	for _, c := range w.Result().Cookies() {
		page.AddCookie(c)
	}

	if err := p.SetPassword(ctx, u.ID, "a new and longer passphrase"); err != nil {
		panic(err)
	}
	fmt.Println("session still open:", p.SignedIn(page) != nil)
	_, err := p.SignIn(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "correct horse battery")
	fmt.Println("old password works:", err == nil)
	_, err = p.SignIn(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "a new and longer passphrase")
	fmt.Println("new password works:", err == nil)
	// Output:
	// session still open: false
	// old password works: false
	// new password works: true
}

// djangoPBKDF2 checks Django's default password hashes,
// pbkdf2_sha256$ITERATIONS$SALT$BASE64(PBKDF2-HMAC-SHA256), as a service
// moving its users from Django would: a hash it does not know is false.
func djangoPBKDF2(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2_sha256" {
		return false
	}
	iterations, err := strconv.Atoi(parts[1])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || err2 != nil || iterations < 1 || iterations > 10_000_000 || len(want) != sha256.Size {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, []byte(parts[2]), iterations, sha256.Size)
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// Users imported from another system keep their passwords: bcrypt hashes
// verify as they are, another format through Config.LegacyPasswords, and
// each is replaced by an argon2id hash at the user's first sign-in.
func ExampleConfig_legacyPasswords() {
	ctx := context.Background()
	store := memory.New()
	_ = store.CreateOrganisation(ctx, &storage.Organisation{ID: "org-1", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	p, _ := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("a secret of at least thirty-two bytes!"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}, LegacyPasswords: djangoPBKDF2})

	// A row of the old system's users table, hash and all (Django made
	// this one for "correct horse battery" with 1,000 iterations).
	sum, _ := pbkdf2.Key(sha256.New, "correct horse battery", []byte("seasalt"), 1000, sha256.Size)
	_ = store.CreateUser(ctx, &storage.User{ID: "user-1", OrganisationID: "org-1", Email: "ada@example.com",
		PasswordHash: "pbkdf2_sha256$1000$seasalt$" + base64.StdEncoding.EncodeToString(sum), CreatedAt: time.Now(), UpdatedAt: time.Now()})

	_, err := p.SignIn(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "correct horse battery")
	u, _ := store.GetUser(ctx, "user-1")
	fmt.Println("signed in:", err == nil, "now stored as:", strings.Split(u.PasswordHash, "$")[1])
	// Output: signed in: true now stored as: argon2id
}

// Take a scope away from an application: the tokens it already holds stop
// carrying it at once.
func ExampleProvider_UpdateClient() {
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := oauth.New(memory.New(), oauth.Config{Issuer: srv.URL, Secret: []byte("a secret of at least thirty-two bytes!")})
	if err != nil {
		panic(err)
	}
	mux.Handle("/", p.Handler())
	secret, client, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "acme", Name: "Backend",
		Grants: []string{oauth.GrantClientCredentials}, Scopes: []string{"bookings:read", "staff:read"}})
	res, _ := http.PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {client.ID}, "client_secret": {secret}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	auth := p.Authenticator(oauth.ResourceConfig{})
	scopes := func() []string {
		r := httptest.NewRequest("GET", "/v1/staff", nil)
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		pr, _ := auth.Authenticate(r)
		return pr.Scopes
	}
	fmt.Println(scopes())

	if _, err := p.UpdateClient(ctx, client.ID, oauth.ClientUpdate{Scopes: []string{"staff:read"}}); err != nil {
		panic(err)
	}
	fmt.Println(scopes())
	// Output:
	// [bookings:read staff:read]
	// [staff:read]
}
