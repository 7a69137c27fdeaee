package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage"
)

// isForm reports whether a Content-Type is a form's, with or without
// parameters (net/http parses it again, fully, to read the form).
func isForm(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/x-www-form-urlencoded")
}

// TokenHandler serves POST /oauth/token for every grant. Errors are in RFC
// 6749 §5.2 form ({"error":"invalid_grant",…}), which OAuth clients parse,
// never in the API envelope. invalid_client after HTTP Basic
// authentication carries WWW-Authenticate: Basic.
func (p *Provider) TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			p.writeTokenError(w, r, nil, withStatus(fosite.ErrInvalidRequest.WithHint("The token endpoint accepts POST only."), http.StatusMethodNotAllowed))
			return
		}
		if !isForm(r.Header.Get("Content-Type")) {
			p.writeTokenError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The token endpoint takes an application/x-www-form-urlencoded body (RFC 6749 §3.2)."))
			return
		}
		if err := readForm(w, r, tokenParams); err != nil {
			p.writeTokenError(w, r, nil, err)
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "", GrantAuthorizationCode, GrantPassword, GrantClientCredentials, GrantRefreshToken:
			// fosite answers a missing grant_type, and a client not allowed its grant
		default:
			// fosite would answer invalid_request; RFC 6749 §5.2 names this error.
			p.writeTokenError(w, r, nil, fosite.ErrUnsupportedGrantType.WithHint(
				"The grant_type must be authorization_code, password, client_credentials or refresh_token."))
			return
		}
		ip := p.cfg.ClientIP(r)
		if r.PostForm.Get("grant_type") == GrantPassword {
			prefix := r.PostForm.Get("domain_prefix")
			if prefix == "" {
				p.writeTokenError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The domain_prefix parameter naming the organisation is required for the password grant."))
				return
			}
			wait, err := p.blocked(ctx, storage.NormalizePrefix(prefix)+"/"+storage.NormalizeEmail(r.PostForm.Get("username")), ip)
			if err != nil {
				p.writeTokenError(w, r, nil, fosite.ErrTemporarilyUnavailable.WithWrap(err))
				return
			}
			if wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
				p.writeTokenError(w, r, nil, withStatus(fosite.ErrInvalidRequest.WithHint("Too many failed sign-in attempts; retry later."), http.StatusTooManyRequests))
				return
			}
		}
		if r.PostForm.Get("grant_type") == GrantRefreshToken {
			// Whatever happens — rotation, or reuse detection revoking the
			// whole grant — this grant's cached access tokens are stale.
			sig := p.strat.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))
			if t, err := p.store.GetToken(ctx, storage.KindRefreshToken, sig); err == nil {
				defer p.tokens.dropRequest(t.RequestID)
			}
		}
		sess := &Session{}
		ctx = context.WithValue(ctx, clientIPKey{}, ip)
		ar, err := p.fosite.NewAccessRequest(ctx, r, sess)
		if err != nil {
			p.writeTokenError(w, r, ar, err)
			return
		}
		c, _ := ar.GetClient().(*client)
		if s, ok := ar.GetSession().(*Session); ok {
			s.ClientID = ar.GetClient().GetID()
		}
		if p.cfg.JWTKeys != nil {
			ar.GrantAudience(p.cfg.JWTAudience)
		}
		if ar.GetGrantTypes().ExactOne(GrantClientCredentials) {
			s := ar.GetSession().(*Session)
			s.Subject, s.Organisation = c.GetID(), c.c.OrganisationID
		}
		if ar.GetGrantTypes().ExactOne(GrantClientCredentials) || ar.GetGrantTypes().ExactOne(GrantPassword) {
			grantRequested(ar, c)
		}
		if ar.GetGrantTypes().ExactOne(GrantRefreshToken) {
			// RFC 6749 §6: the scope of a refresh "MUST NOT include any scope
			// not originally granted"; fosite ignores the parameter and
			// answers with the original scope. Refused before anything
			// rotates. A narrower scope is the new access token's, while
			// the new refresh token keeps the grant's ("identical to that
			// of the refresh token included by the client").
			asked := fosite.RemoveEmpty(strings.Split(r.PostForm.Get("scope"), " "))
			whole := ar.GetGrantedScopes()
			within, beyond := p.catalog.Narrow(asked, scope.Set(whole))
			if len(beyond) > 0 {
				p.writeTokenError(w, r, ar, fosite.ErrInvalidScope.WithHintf("The refresh token was not granted %s (RFC 6749 §6).", strings.Join(beyond, " ")))
				return
			}
			if narrowed, ok := narrower(within, whole); ok {
				if req, ok := ar.(*fosite.AccessRequest); ok {
					ctx = context.WithValue(ctx, grantScopeKey{}, slices.Clone([]string(whole)))
					req.GrantedScope = fosite.Arguments(narrowed)
				}
			}
		}
		resp, err := p.fosite.NewAccessResponse(ctx, ar)
		switch {
		case err == nil && ar.GetGrantTypes().ExactOne(GrantRefreshToken):
			err = p.revokedDuringRefresh(ctx, r.PostForm.Get("refresh_token"), resp)
		case err == nil && ar.GetGrantTypes().ExactOne(GrantAuthorizationCode):
			err = p.codeSpentTwice(ctx, r.PostForm.Get("code"), resp)
		}
		if err != nil {
			p.writeTokenError(w, r, ar, err)
			return
		}
		body := resp.ToMap()
		if rt, ok := body["refresh_token"].(string); ok && c != nil && !c.GetGrantTypes().Has(GrantRefreshToken) {
			// fosite's password grant issues refresh tokens regardless of
			// the client's grants: a client not allowed to refresh gets none.
			delete(body, "refresh_token")
			if err := p.store.DeleteToken(ctx, storage.KindRefreshToken, p.strat.RefreshTokenSignature(ctx, rt)); err != nil {
				p.log.Error("deleting an unusable refresh token failed", "err", err)
			}
		}
		if c != nil && c.c.AccessTokenLifetime == storage.NoExpiry {
			body["expires_in"] = nil
		}
		if _, ok := body["refresh_token"]; !ok {
			body["refresh_token"] = nil
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		_ = json.NewEncoder(w).Encode(body)
	})
}

type clientIPKey struct{}

// revokedDuringRefresh checks, once a refresh has stored its new pair,
// that the grant was not revoked meanwhile; if it was, it ends the pair
// and answers invalid_grant. A revocation landing after the used token
// rotated and before the new pair was stored would otherwise miss the
// pair, and the client would go on with a grant its user ended.
//
// It works with the revocations' two passes (fositeStore.RevokeRefreshToken,
// Provider.Disconnect): a
// revocation first clears the used token's RotatedAt (or deletes it, on
// reuse), then sweeps the grant again. Either this read sees the first
// pass, or the pair was stored before that pass ended and the second
// sweeps it: every interleaving ends with nothing of the grant active,
// on any store whose single operations are atomic and see every
// operation completed before them.
func (p *Provider) revokedDuringRefresh(ctx context.Context, used string, resp fosite.AccessResponder) error {
	t, err := p.store.GetToken(ctx, storage.KindRefreshToken, p.strat.RefreshTokenSignature(ctx, used))
	if err == nil && !t.RotatedAt.IsZero() {
		return nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		err = fmt.Errorf("oauth: checking the grant after a refresh: %w", err)
	} else {
		err = fosite.ErrInvalidGrant.WithHint("The grant was revoked while the refresh token was being exchanged.")
	}
	p.endIssued(ctx, resp)
	return err
}

// codeSpentTwice checks, once a code exchange has stored its tokens, that
// the code was not used again meanwhile (fositeStore.codeUsedAgain
// deletes it, then revokes the grant); if it was, it ends the tokens
// and answers invalid_grant. As in revokedDuringRefresh, either this
// read sees the deletion or the tokens were stored before it, and the
// revocation after it takes them.
func (p *Provider) codeSpentTwice(ctx context.Context, code string, resp fosite.AccessResponder) error {
	_, err := p.store.GetToken(ctx, storage.KindAuthorizeCode, p.strat.AuthorizeCodeSignature(ctx, code))
	if err == nil {
		return nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	} else {
		err = fmt.Errorf("oauth: checking the code after its exchange: %w", err)
	}
	p.endIssued(ctx, resp)
	return err
}

// endIssued ends the tokens of a response that never reaches the client.
func (p *Provider) endIssued(ctx context.Context, resp fosite.AccessResponder) {
	if derr := p.store.DeleteToken(ctx, storage.KindAccessToken, p.access.AccessTokenSignature(ctx, resp.GetAccessToken())); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
		p.log.Error("ending the access token of a refused token request", "err", derr)
	}
	if rt, ok := resp.GetExtra("refresh_token").(string); ok {
		if derr := p.store.DeactivateToken(ctx, storage.KindRefreshToken, p.strat.RefreshTokenSignature(ctx, rt)); derr != nil && !errors.Is(derr, storage.ErrNotFound) {
			p.log.Error("ending the refresh token of a refused token request", "err", derr)
		}
	}
}

// narrower returns, as a set, the scopes a refresh asked for (all within
// the grant), and whether they are not the grant's whole scope. An
// omitted scope is "treated as equal to the scope originally granted".
func narrower(asked, whole []string) (scope.Set, bool) {
	a, err := scope.NewSet(asked...)
	w, werr := scope.NewSet(whole...)
	if len(asked) == 0 || err != nil || werr != nil {
		return nil, false
	}
	return a, !slices.Equal(a, w)
}

// The parameters of each endpoint, which RFC 6749 §3.1 and §3.2 say
// "MUST NOT be included more than once" (fosite reads the first and
// ignores the rest).
var (
	tokenParams     = []string{"grant_type", "code", "redirect_uri", "code_verifier", "username", "password", "domain_prefix", "refresh_token", "scope", "client_id", "client_secret"}
	authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "response_mode", "nonce", "prompt"}
	tokenFormParams = []string{"token", "token_type_hint", "client_id", "client_secret"}
)

// once returns an invalid_request naming the first of names that v holds
// more than once, or nil.
func once(v url.Values, names []string) error {
	for _, n := range names {
		if len(v[n]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The %s parameter is sent more than once.", n)
		}
	}
	return nil
}

// readForm reads the form of the token, revocation and introspection
// endpoints, its body limited to maxFormBytes, and refuses what fosite
// lets through: a parameter of names sent more than once, and a client
// that authenticates twice, with HTTP Basic and with a client_secret in
// the body, or names another client_id in the body than in the header
// (RFC 6749 §2.3: one method per request; §5.2 names this
// invalid_request). fosite takes the header and ignores the body, so a
// wrong body secret went unnoticed. Its error is an OAuth error: 413 for
// a body over the limit, else invalid_request.
func readForm(w http.ResponseWriter, r *http.Request, names []string) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return withStatus(fosite.ErrInvalidRequest.WithHint("The request body is larger than 64 KiB."), http.StatusRequestEntityTooLarge)
		}
		return fosite.ErrInvalidRequest.WithHint("The request body could not be parsed.")
	}
	if err := once(r.PostForm, names); err != nil {
		return err
	}
	id, _, basic := r.BasicAuth()
	if !basic {
		return nil
	}
	if _, both := r.PostForm["client_secret"]; both {
		return fosite.ErrInvalidRequest.WithHint("Authenticate the client one way: HTTP Basic or client_secret in the body, not both.")
	}
	if body := r.PostForm.Get("client_id"); body != "" {
		if header, err := urlUnescape(id); err != nil || header != body {
			return fosite.ErrInvalidRequest.WithHint("The client_id in the body is not the client of the Authorization header.")
		}
	}
	return nil
}

// maxFormBytes bounds the form bodies of the token, revocation and
// introspection endpoints, whose forms are a few hundred bytes (net/http
// alone would read 10 MB).
const maxFormBytes = 64 << 10

// withStatus returns a copy of e answered with another HTTP status.
func withStatus(e *fosite.RFC6749Error, status int) *fosite.RFC6749Error {
	c := *e
	c.CodeField = status
	return &c
}

// grantRequested grants the requested scopes (fosite has checked them
// against the client), or the client's own scopes when none were asked for
// (TidyHQ's password grant sends no scope).
func grantRequested(ar fosite.Requester, c *client) {
	req := ar.GetRequestedScopes()
	if len(req) == 0 && c != nil {
		req = c.GetScopes()
	}
	for _, s := range req {
		ar.GrantScope(s)
	}
}

func (p *Provider) writeTokenError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) ||
		r.PostForm.Get("grant_type") == GrantAuthorizationCode && errors.Is(err, fosite.ErrServerError) && errors.Is(err, fosite.ErrNotFound) {
		// A code used more than once, found out by the store, or gone
		// while fosite issued for it (deleted as used more than once):
		// fosite answers both server_error. The grant is revoked
		// already (fositeStore.codeUsedAgain).
		err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	}
	p.logFositeError(r.URL.Path, err)
	err = unavailableAs503(err)
	if errors.Is(err, fosite.ErrInvalidClient) {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		}
	}
	p.fosite.WriteAccessError(r.Context(), w, ar, err)
}

// unavailableAs503 turns a storage outage into RFC 6749's
// temporarily_unavailable (503), which clients retry, instead of
// server_error (500).
func unavailableAs503(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	return err
}

func (p *Provider) logFositeError(path string, err error) {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.CodeField < 500 {
		p.log.Info("oauth request refused", "path", path, "error", rfc.ErrorField, "hint", rfc.HintField)
		return
	}
	// An RFC6749Error prints as its code alone ("server_error"): log what
	// caused it, or nothing here says why the request failed.
	cause := err
	if rfc != nil && rfc.Cause() != nil {
		cause = rfc.Cause()
	}
	p.log.Error("oauth server error", "path", path, "err", err, "cause", cause)
}

// signinLimit is one of the two limits on failed sign-ins.
type signinLimit struct {
	key string
	pol ratelimit.Policy
}

// signinLimits are the limits of an account's and an address's failed
// sign-ins. The account (domain prefix and email) is named by a keyed
// hash, so a shared limiter never holds an email.
func (p *Provider) signinLimits(account, ip string) [2]signinLimit {
	return [2]signinLimit{
		{"signin:acct:" + p.mac("signin", account), *p.cfg.LoginAttempts},
		{"signin:ip:" + ratelimit.AddressKey(ip), *p.cfg.LoginAttemptsPerIP},
	}
}

// blocked returns how long sign-ins for account or from ip must wait after
// too many failures; zero when they may proceed. An error is the
// limiter's: the sign-in must not go on unchecked.
func (p *Provider) blocked(ctx context.Context, account, ip string) (time.Duration, error) {
	var wait time.Duration
	for _, l := range p.signinLimits(account, ip) {
		res, err := p.fails.Allow(ctx, l.key, l.pol, 0)
		if err != nil {
			return 0, &limitUncheckedError{err}
		}
		if wr, ok := res.Exhausted(); ok {
			wait = max(wait, wr.Reset.Sub(res.At))
		}
	}
	return wait, nil
}

// secretMatches checks a client secret against the client's current
// secret and, until it expires, the one before its last rotation, as
// fosite's own client authentication does.
func (p *Provider) secretMatches(ctx context.Context, c *client, secret string) bool {
	if p.hasher.Compare(ctx, c.GetHashedSecret(), []byte(secret)) == nil {
		return true
	}
	for _, h := range c.GetRotatedHashes() {
		if p.hasher.Compare(ctx, h, []byte(secret)) == nil {
			return true
		}
	}
	return false
}

// limitUncheckedError is a sign-in refused because its limit could not
// be checked. It reports Unavailable() true, as storage.ErrUnavailable
// does, so apierror answers it 503 with Retry-After.
type limitUncheckedError struct{ err error }

func (e *limitUncheckedError) Error() string {
	return "oauth: the sign-in limit could not be checked: " + e.err.Error()
}
func (e *limitUncheckedError) Unwrap() error     { return e.err }
func (e *limitUncheckedError) Unavailable() bool { return true }

// recordFailure counts a failed sign-in against the account and the
// address, even when the client has hung up.
func (p *Provider) recordFailure(ctx context.Context, account, ip string) {
	ctx = context.WithoutCancel(ctx)
	for _, l := range p.signinLimits(account, ip) {
		if _, err := p.fails.Allow(ctx, l.key, l.pol, 1); err != nil {
			p.log.Error("a failed sign-in was not counted: the limiter failed", "limit", l.pol.Name, "err", err)
		}
	}
}

// verifyUser checks an email and password within an organisation named
// by its domain prefix. Every failure is storage.ErrNotFound, whatever
// was wrong, and is counted against the account and the address.
func (p *Provider) verifyUser(ctx context.Context, prefix, email, password, ip string) (*storage.User, *storage.Organisation, error) {
	account := storage.NormalizePrefix(prefix) + "/" + storage.NormalizeEmail(email)
	fail := func(reason string) (*storage.User, *storage.Organisation, error) {
		p.recordFailure(ctx, account, ip)
		p.log.Warn("sign-in failed", "domain_prefix", storage.NormalizePrefix(prefix), "reason", reason, "ip", ip)
		return nil, nil, storage.ErrNotFound
	}
	org, err := p.store.GetOrganisationByPrefix(ctx, prefix)
	if errors.Is(err, storage.ErrNotFound) {
		CheckPassword(p.dummyHash, password)
		return fail("unknown organisation")
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := p.store.GetUserByEmail(ctx, org.ID, email)
	if errors.Is(err, storage.ErrNotFound) {
		CheckPassword(p.dummyHash, password)
		return fail("unknown user")
	}
	if err != nil {
		return nil, nil, err
	}
	if !p.passwordMatches(u.PasswordHash, password) {
		return fail("wrong password")
	}
	p.log.Info("sign-in", "user_id", u.ID, "organisation", org.ID, "ip", ip)
	if upgradable(u.PasswordHash, password, p.cfg.PasswordParams.effective()) {
		p.rehash(ctx, u, password)
	}
	return u, org, nil
}

// passwordMatches checks password against a user's stored hash: argon2id
// or bcrypt (CheckPassword), or, through Config.LegacyPasswords, a format
// of another system.
func (p *Provider) passwordMatches(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") || isBcrypt(hash) || p.cfg.LegacyPasswords == nil {
		return CheckPassword(hash, password)
	}
	return p.cfg.LegacyPasswords(hash, password)
}

// upgradable reports whether a hash that password just matched should be
// replaced by an argon2id one made with params: any other format, or
// argon2id made with weaker parameters. A bcrypt hash stays when the
// password is longer than the 72 bytes bcrypt read: the bytes beyond
// were never checked, and hashing them in would lock out the user whose
// password has other ones there.
func upgradable(hash, password string, params PasswordParams) bool {
	if isBcrypt(hash) {
		return len(password) <= 72
	}
	hp, ok := hashParams(hash)
	return !ok || hp.weakerThan(params)
}

// rehash stores a new hash of a user's password, just checked, made with
// the provider's PasswordParams: raising them upgrades each user's hash at
// their next sign-in. A hash is never made weaker (an instance still on
// the old parameters during a roll-out leaves upgraded hashes alone). A
// failure is logged and the sign-in goes on with the old hash, which
// still verifies. The new hash replaces the one just checked only: a
// password set meanwhile (Provider.SetPassword, on any instance) is not
// undone, and nothing else of the user is written.
func (p *Provider) rehash(ctx context.Context, u *storage.User, password string) {
	err := p.storePassword(ctx, u.ID, u.PasswordHash, password)
	switch {
	case errors.Is(err, storage.ErrConflict):
		p.log.Info("password hash not upgraded: the password changed during the sign-in", "user_id", u.ID)
	case err != nil:
		p.log.Warn("upgrading a password hash failed; the old one stays", "user_id", u.ID, "err", err)
	}
}

// checkPassword is fosite's password-grant hook. The organisation comes
// from domain_prefix, read from the access request in the context.
func (p *Provider) checkPassword(ctx context.Context, username, password string) (string, error) {
	ar, ok := ctx.Value(fosite.AccessRequestContextKey).(fosite.AccessRequester)
	if !ok {
		return "", errors.New("oauth: password grant without an access request in the context")
	}
	ip, _ := ctx.Value(clientIPKey{}).(string)
	u, org, err := p.verifyUser(ctx, ar.GetRequestForm().Get("domain_prefix"), username, password, ip)
	if errors.Is(err, storage.ErrNotFound) {
		return "", fosite.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	if s, ok := ar.GetSession().(*Session); ok {
		s.Organisation, s.Username = org.ID, u.Email
	}
	return u.ID, nil
}

// RevokeHandler serves POST /oauth/revoke (RFC 7009). Clients authenticate
// with client_secret_basic or client_secret_post. Revoking a refresh token
// revokes its whole grant; either way the grant's cached access tokens are
// dropped on this instance at once.
func (p *Provider) RevokeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), revocationKey{}, true)
		if r.Method == http.MethodPost {
			if err := readForm(w, r, tokenFormParams); err != nil {
				// fosite's revocation response would answer it 200.
				p.writeTokenError(w, r, nil, err)
				return
			}
			if tok := r.PostForm.Get("token"); tok != "" {
				if _, ar, err := p.fosite.IntrospectToken(ctx, tok, fosite.AccessToken, &Session{}); err == nil {
					defer p.tokens.dropRequest(ar.GetID())
				} else if _, ar, err := p.fosite.IntrospectToken(ctx, tok, fosite.RefreshToken, &Session{}); err == nil {
					defer p.tokens.dropRequest(ar.GetID())
				}
			}
		}
		err := p.fosite.NewRevocationRequest(ctx, r)
		if err != nil {
			p.logFositeError(r.URL.Path, err)
			if errors.Is(err, fosite.ErrInvalidClient) {
				if _, _, basic := r.BasicAuth(); basic {
					w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
				}
			}
		}
		p.fosite.WriteRevocationResponse(ctx, w, err)
	})
}

// IntrospectHandler serves POST /oauth/introspect (RFC 7662). Only
// authenticated clients may introspect (client_secret_basic or
// client_secret_post; fosite alone would also accept any bearer token and
// only Basic), and a client may introspect only tokens of its own
// organisation.
func (p *Provider) IntrospectHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			p.writeTokenError(w, r, nil, fosite.ErrInvalidRequest.WithHint("POST a form with the token parameter."))
			return
		}
		if err := readForm(w, r, tokenFormParams); err != nil {
			p.writeTokenError(w, r, nil, err)
			return
		}
		caller, err := p.authenticateClient(ctx, r)
		if err != nil {
			p.writeTokenError(w, r, nil, err)
			return
		}
		tok := r.PostForm.Get("token")
		if tok == "" {
			p.writeTokenError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
			return
		}
		out := map[string]any{"active": false}
		use := fosite.AccessToken
		if r.PostForm.Get("token_type_hint") == "refresh_token" {
			use = fosite.RefreshToken
		}
		tu, ar, err := p.fosite.IntrospectToken(ctx, tok, use, &Session{})
		if err == nil {
			s, _ := ar.GetSession().(*Session)
			if s != nil && s.Organisation == caller.c.OrganisationID {
				out = map[string]any{
					"active": true, "client_id": ar.GetClient().GetID(), "sub": s.Subject, "org": s.Organisation,
					"scope": joinScopes(p.stillAllowed(ar.GetGrantedScopes(), ar.GetClient().GetScopes())), "iat": ar.GetRequestedAt().Unix(), "iss": p.cfg.Issuer,
					"token_type": tokenTypeName(tu),
				}
				if s.Username != "" {
					out["username"] = s.Username
				}
				if exp := s.GetExpiresAt(fosite.TokenType(tu)); !exp.IsZero() && time.Until(exp) < noExpiryLifespan/2 {
					out["exp"] = exp.Unix()
				}
			}
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_ = json.NewEncoder(w).Encode(out)
	})
}

func tokenTypeName(tu fosite.TokenUse) string {
	if tu == fosite.RefreshToken {
		return "refresh_token"
	}
	return "access_token"
}

func joinScopes(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// authenticateClient checks client credentials from HTTP Basic or the form
// body, for the endpoints where fosite does not.
func (p *Provider) authenticateClient(ctx context.Context, r *http.Request) (*client, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = urlUnescape(id)
		secret, err2 = urlUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, fosite.ErrInvalidRequest.WithHint("The client credentials could not be decoded.")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication is required.")
	}
	sc, err := p.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	c := adaptClient(sc)
	if sc.Public || !p.secretMatches(ctx, c, secret) {
		return nil, fosite.ErrInvalidClient.WithHint("Client authentication failed.")
	}
	return c, nil
}
