package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"

	"github.com/gatehouse-go/gatehouse/storage"
)

// Store is what the provider needs from storage. Every Gatehouse adapter
// (storage/memory, storage/sqlstore) satisfies it; so does any
// storage.Store.
type Store interface {
	storage.Clients
	storage.Tokens
	storage.Consents
	storage.Users
	storage.Organisations
}

// client adapts storage.Client to fosite.Client.
type client struct {
	c *storage.Client
	// lifetimes for fosite.ClientWithCustomTokenLifespans.
	access, refresh time.Duration
	// audience is what the client's tokens may be granted: the JWT
	// audience when access tokens are JWTs (a refresh checks the grant's
	// audience against it), else none.
	audience fosite.Arguments
}

var (
	_ fosite.Client                         = (*client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*client)(nil)
	_ fosite.ClientWithSecretRotation       = (*client)(nil)
)

func (c *client) GetID() string           { return c.c.ID }
func (c *client) GetHashedSecret() []byte { return []byte(c.c.SecretHash) }

// GetRotatedHashes is the secret before the last rotation, while it has
// not expired: fosite tries it when the current secret does not match.
func (c *client) GetRotatedHashes() [][]byte {
	if c.c.PreviousSecretHash == "" || !time.Now().Before(c.c.PreviousSecretExpiresAt) {
		return nil
	}
	return [][]byte{[]byte(c.c.PreviousSecretHash)}
}
func (c *client) GetRedirectURIs() []string          { return c.c.RedirectURIs }
func (c *client) GetGrantTypes() fosite.Arguments    { return c.c.GrantTypes }
func (c *client) GetResponseTypes() fosite.Arguments { return c.c.ResponseTypes }
func (c *client) GetScopes() fosite.Arguments        { return c.c.Scopes }
func (c *client) IsPublic() bool                     { return c.c.Public }
func (c *client) GetAudience() fosite.Arguments      { return c.audience }

// GetEffectiveLifespan applies the client's own lifetimes.
func (c *client) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	switch {
	case tt == fosite.AccessToken && c.access != 0:
		return c.access
	case tt == fosite.RefreshToken && c.refresh != 0:
		return c.refresh
	}
	return fallback
}

// noExpiryLifespan stands in for "never expires": fosite needs a duration.
// The token endpoint reports such tokens with "expires_in": null.
const noExpiryLifespan = 100 * 365 * 24 * time.Hour

func adaptClient(c *storage.Client) *client {
	a := &client{c: c, refresh: max(0, c.RefreshTokenLifetime)}
	switch {
	case c.AccessTokenLifetime == storage.NoExpiry:
		a.access = noExpiryLifespan
	case c.AccessTokenLifetime > 0:
		a.access = c.AccessTokenLifetime
	}
	return a
}

// fositeStore adapts Store to every storage interface of fosite that the
// composed handlers use. The compile-time assertions below are the point:
// a missing method is a build error here, not a panic in compose.
type fositeStore struct {
	s        Store
	password func(ctx context.Context, username, password string) (string, error)
	// grace is Config.RefreshReuseGrace.
	grace time.Duration
	log   *slog.Logger
	// audience is every client's (see client.audience).
	audience fosite.Arguments
	// revoked is told of every grant whose access tokens were revoked,
	// so that no cache keeps them (Provider.forget).
	revoked func(ctx context.Context, requestID string)
}

// grantScopeKey carries the grant's whole scope in the context of a
// refresh that asked for less: the new access token has the narrower
// scope, the new refresh token the whole (RFC 6749 §6).
type grantScopeKey struct{}

// inGrace reports whether t, a refresh token, was rotated less than the
// grace period ago and is still its grant's latest rotation (the store
// keeps RotatedAt on that one alone, and clears it when the grant is
// revoked).
func (f *fositeStore) inGrace(t *storage.Token) bool {
	return f.grace > 0 && !t.Active && !t.RotatedAt.IsZero() && time.Since(t.RotatedAt) < f.grace
}

var (
	_ fosite.ClientManager                                = (*fositeStore)(nil)
	_ oauth2.CoreStorage                                  = (*fositeStore)(nil)
	_ oauth2.TokenRevocationStorage                       = (*fositeStore)(nil)
	_ oauth2.ResourceOwnerPasswordCredentialsGrantStorage = (*fositeStore)(nil)
	_ pkce.PKCERequestStorage                             = (*fositeStore)(nil)
)

// GetClient implements fosite.ClientManager.
func (f *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.s.GetClient(ctx, id)
	if err != nil {
		return nil, fositeErr(err)
	}
	a := adaptClient(c)
	a.audience = f.audience
	return a, nil
}

// ClientAssertionJWTValid implements fosite.ClientManager. JWT client
// assertions are not enabled, so no JTI is ever known.
func (f *fositeStore) ClientAssertionJWTValid(context.Context, string) error { return nil }

// SetClientAssertionJWT implements fosite.ClientManager; see above.
func (f *fositeStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errors.New("oauth: JWT client assertions are not supported")
}

// fositeErr maps storage.ErrNotFound to fosite.ErrNotFound, which fosite's
// handlers test for; other errors pass through (they become server_error).
func fositeErr(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w (%v)", fosite.ErrNotFound, err)
	}
	return err
}

// stored is the serialised form of a fosite request. The session is
// encoded and decoded in the same pass as the rest (the bytes are those a
// separately marshalled session would give).
type stored struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"requested_scope"`
	GrantedScope      []string   `json:"granted_scope"`
	RequestedAudience []string   `json:"requested_audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form"`
	Session           *Session   `json:"session"`
}

func (f *fositeStore) create(ctx context.Context, kind storage.TokenKind, sig string, r fosite.Requester) error {
	sess, _ := r.GetSession().(*Session)
	if sess == nil {
		return fmt.Errorf("oauth: unexpected session type %T", r.GetSession())
	}
	form := url.Values{}
	for k, v := range r.GetRequestForm() {
		if k != "password" && k != "client_secret" {
			form[k] = v
		}
	}
	granted := []string(r.GetGrantedScopes())
	if whole, ok := ctx.Value(grantScopeKey{}).([]string); ok && kind == storage.KindRefreshToken {
		granted = whole
	}
	data, err := json.Marshal(stored{
		ID: r.GetID(), RequestedAt: r.GetRequestedAt(), ClientID: r.GetClient().GetID(),
		RequestedScope: r.GetRequestedScopes(), GrantedScope: granted,
		RequestedAudience: r.GetRequestedAudience(), GrantedAudience: r.GetGrantedAudience(),
		Form: form, Session: sess,
	})
	if err != nil {
		return err
	}
	var exp time.Time
	switch kind {
	case storage.KindAccessToken:
		exp = sess.GetExpiresAt(fosite.AccessToken)
	case storage.KindRefreshToken:
		exp = sess.GetExpiresAt(fosite.RefreshToken)
	case storage.KindAuthorizeCode, storage.KindPKCE:
		exp = sess.GetExpiresAt(fosite.AuthorizeCode)
	}
	if !exp.IsZero() && time.Until(exp) > noExpiryLifespan/2 {
		exp = time.Time{} // a non-expiring token
	}
	return f.s.CreateToken(ctx, &storage.Token{
		Kind: kind, Signature: sig, RequestID: r.GetID(), ClientID: r.GetClient().GetID(),
		Subject: sess.Subject, OrganisationID: sess.Organisation, Scopes: granted,
		RequestedAt: r.GetRequestedAt(), ExpiresAt: exp, Active: true, Data: data,
	})
}

// get loads a token and rebuilds its request around the prototype
// session. For an inactive token it returns the request and inactiveErr,
// as fosite's replay detection needs both.
func (f *fositeStore) get(ctx context.Context, kind storage.TokenKind, sig string, proto fosite.Session, inactiveErr error) (fosite.Requester, error) {
	t, err := f.s.GetToken(ctx, kind, sig)
	if err != nil {
		return nil, fositeErr(err)
	}
	sess, ok := proto.(*Session)
	if !ok || sess == nil {
		sess = &Session{}
	}
	st := stored{Session: sess} // decoded into the prototype, in one pass
	if err := json.Unmarshal(t.Data, &st); err != nil {
		return nil, fmt.Errorf("oauth: corrupt stored request: %w", err)
	}
	c, err := f.GetClient(ctx, st.ClientID)
	if err != nil {
		return nil, err
	}
	req := &fosite.Request{
		ID: st.ID, RequestedAt: st.RequestedAt, Client: c,
		RequestedScope: st.RequestedScope, GrantedScope: st.GrantedScope,
		RequestedAudience: st.RequestedAudience, GrantedAudience: st.GrantedAudience,
		Form: st.Form, Session: sess,
	}
	if !t.Active && !(kind == storage.KindRefreshToken && (f.gracedFor(ctx, t) || revoking(ctx) && !t.RotatedAt.IsZero())) {
		switch kind {
		case storage.KindAuthorizeCode:
			f.codeUsedAgain(ctx, sig)
		case storage.KindPKCE: // spent with its code
			f.codeUsedAgain(ctx, sig)
			return nil, fmt.Errorf("oauth: %w", fosite.ErrInvalidatedAuthorizeCode)
		}
		return req, inactiveErr
	}
	return req, nil
}

// gracedFor reports whether t, a rotated refresh token in its grace
// period, is being used for a refresh by the client it was issued to:
// fosite puts the token endpoint's access request in the context (and
// only there: introspection and revocation see the token as it is,
// inactive). Used by any other client, it is reused as without a grace:
// fosite revokes the grant.
func (f *fositeStore) gracedFor(ctx context.Context, t *storage.Token) bool {
	if !f.inGrace(t) {
		return false
	}
	ar, ok := ctx.Value(fosite.AccessRequestContextKey).(fosite.AccessRequester)
	return ok && ar.GetGrantTypes().ExactOne(GrantRefreshToken) && ar.GetClient() != nil && ar.GetClient().GetID() == t.ClientID
}

// revocationKey marks the context of a revocation request: a refresh
// token that is its grant's latest rotation (RotatedAt set) is found
// there as if active, so revoking it revokes the grant. It may still be
// in use (within the grace, or by a refresh under way that has not
// answered yet); revoking it otherwise answered 200 and ended nothing,
// RFC 7009's answer for a token no longer valid. It gives no one more
// than they had: a replay of that token revokes the grant too.
type revocationKey struct{}

func revoking(ctx context.Context) bool {
	v, _ := ctx.Value(revocationKey{}).(bool)
	return v
}

func (f *fositeStore) del(ctx context.Context, kind storage.TokenKind, sig string) error {
	return fositeErr(f.s.DeleteToken(ctx, kind, sig))
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (f *fositeStore) CreateAuthorizeCodeSession(ctx context.Context, code string, r fosite.Requester) error {
	return f.create(ctx, storage.KindAuthorizeCode, code, r)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage: a used
// code comes back with fosite.ErrInvalidatedAuthorizeCode, so fosite
// revokes everything issued for it.
func (f *fositeStore) GetAuthorizeCodeSession(ctx context.Context, code string, s fosite.Session) (fosite.Requester, error) {
	return f.get(ctx, storage.KindAuthorizeCode, code, s, fosite.ErrInvalidatedAuthorizeCode)
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage,
// atomically: of two concurrent exchanges of one code only one spends
// it; the other used the code a second time (see spend).
func (f *fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	return f.spend(ctx, storage.KindAuthorizeCode, code)
}

// spend deactivates the code, or its PKCE session (both under the code's
// signature), atomically: the exchange that loses the race used the code
// a second time, and gets fosite.ErrInvalidatedAuthorizeCode after the
// grant is revoked (fosite alone answers a lost race server_error and
// revokes nothing).
func (f *fositeStore) spend(ctx context.Context, kind storage.TokenKind, sig string) error {
	err := f.s.DeactivateToken(ctx, kind, sig)
	if errors.Is(err, storage.ErrNotFound) {
		f.codeUsedAgain(ctx, sig)
		return fmt.Errorf("oauth: %w", fosite.ErrInvalidatedAuthorizeCode)
	}
	return fositeErr(err)
}

// codeUsedAgain handles the authorization code with signature sig used
// more than once (RFC 6749 §4.1.2: "MUST deny the request and SHOULD
// revoke all tokens previously issued based on that authorization
// code"): it deletes the code, then revokes its grant. An exchange of it
// storing its tokens meanwhile finds the code gone and ends them
// (Provider.codeSpentTwice); the revocation takes whatever was stored
// before. With the code gone already, another request did all this.
func (f *fositeStore) codeUsedAgain(ctx context.Context, sig string) {
	t, err := f.s.GetToken(ctx, storage.KindAuthorizeCode, sig)
	if err == nil {
		err = f.s.DeleteToken(ctx, storage.KindAuthorizeCode, sig)
	}
	if err == nil {
		if err = f.RevokeRefreshToken(ctx, t.RequestID); err == nil {
			err = f.RevokeAccessToken(ctx, t.RequestID)
		}
		f.log.InfoContext(ctx, "authorization code used more than once: its grant is revoked", "client_id", t.ClientID, "grant", t.RequestID)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.log.ErrorContext(ctx, "revoking the grant of an authorization code used more than once failed", "err", err)
	}
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (f *fositeStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return f.create(ctx, storage.KindAccessToken, sig, r)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (f *fositeStore) GetAccessTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	return f.get(ctx, storage.KindAccessToken, sig, s, fosite.ErrInactiveToken)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (f *fositeStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return f.del(ctx, storage.KindAccessToken, sig)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (f *fositeStore) CreateRefreshTokenSession(ctx context.Context, sig, _ string, r fosite.Requester) error {
	return f.create(ctx, storage.KindRefreshToken, sig, r)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage: a rotated
// or revoked refresh token comes back with fosite.ErrInactiveToken, so its
// reuse revokes the whole grant.
func (f *fositeStore) GetRefreshTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	return f.get(ctx, storage.KindRefreshToken, sig, s, fosite.ErrInactiveToken)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (f *fositeStore) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return f.del(ctx, storage.KindRefreshToken, sig)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: the used
// refresh token becomes inactive, with the time of its rotation
// (conditionally: of two concurrent rotations of one token only one
// rotates), and the grant's access tokens are revoked. A token rotated
// already, by a request whose response the client never got or by one
// running beside this one, passes while it is in its grace period: the
// pair issued then stays valid beside the one this request issues.
func (f *fositeStore) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	err := f.s.RotateToken(ctx, storage.KindRefreshToken, sig, time.Now())
	if errors.Is(err, storage.ErrNotFound) && f.grace > 0 {
		if t, gerr := f.s.GetToken(ctx, storage.KindRefreshToken, sig); gerr == nil && f.inGrace(t) {
			f.log.InfoContext(ctx, "refresh token used again within its grace period", "client_id", t.ClientID,
				"grant", t.RequestID, "since_rotation", time.Since(t.RotatedAt).Round(time.Millisecond))
			return nil
		}
	}
	if err != nil {
		return fositeErr(err)
	}
	// The grant's earlier access tokens end here; other instances may
	// still take one from their cache for ResourceConfig.CacheTTL. A
	// rotation is routine, not a revocation: announcing each one would
	// have every instance scan its cache for every refresh.
	_, err = f.s.DeleteTokensByRequest(ctx, storage.KindAccessToken, requestID)
	return err
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage, in two
// passes: the grant's refresh tokens are deactivated (clearing the
// RotatedAt of the one a refresh may be exchanging), its access tokens
// removed, and its refresh tokens deactivated again. A refresh storing a
// new pair meanwhile either sees the first pass and ends the pair
// (Provider.revokedDuringRefresh) or stored it before the first pass
// ended, and what follows takes it.
func (f *fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if _, err := f.s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, requestID); err != nil {
		return err
	}
	if _, err := f.s.DeleteTokensByRequest(ctx, storage.KindAccessToken, requestID); err != nil {
		return err
	}
	f.revoked(ctx, requestID)
	_, err := f.s.DeactivateTokensByRequest(ctx, storage.KindRefreshToken, requestID)
	return err
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage.
func (f *fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	_, err := f.s.DeleteTokensByRequest(ctx, storage.KindAccessToken, requestID)
	f.revoked(ctx, requestID)
	return err
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (f *fositeStore) CreatePKCERequestSession(ctx context.Context, sig string, r fosite.Requester) error {
	return f.create(ctx, storage.KindPKCE, sig, r)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (f *fositeStore) GetPKCERequestSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	return f.get(ctx, storage.KindPKCE, sig, s, fosite.ErrNotFound)
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage: the
// session is spent with its code (see spend), and kept inactive until it
// expires, so a second exchange of the code finds it spent instead of
// missing (fosite would answer that invalid_grant and revoke nothing).
func (f *fositeStore) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return f.spend(ctx, storage.KindPKCE, sig)
}

// Authenticate implements the password grant's user check.
func (f *fositeStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	return f.password(ctx, username, password)
}
