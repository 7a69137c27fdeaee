package storage

import (
	"context"
	"time"
)

// Client is a registered OAuth 2.0 application.
type Client struct {
	ID string
	// SecretHash is the encoded hash of the client secret; empty for a
	// public client. Never the secret.
	SecretHash string
	// PreviousSecretHash is the hash of the secret before the last
	// rotation, which still authenticates the client until
	// PreviousSecretExpiresAt; empty when there is none.
	PreviousSecretHash      string
	PreviousSecretExpiresAt time.Time
	Name                    string
	OrganisationID          string
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	// Scopes are the scopes the client may be granted.
	Scopes []string
	// Public clients (single-page and native apps) have no secret and must
	// use PKCE.
	Public bool
	// AccessTokenLifetime overrides the provider's access-token lifetime
	// when positive; NoExpiry issues access tokens that do not expire.
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime overrides the refresh-token lifetime when
	// positive.
	RefreshTokenLifetime time.Duration
	CreatedAt            time.Time
	// Version counts the changes UpdateClient made: an update names the
	// version it read (see APIKey.Version).
	Version int64
}

// NoExpiry, as a client's AccessTokenLifetime, asks for access tokens that
// do not expire (TidyHQ's tokens carry "expires_in": null).
const NoExpiry time.Duration = -1

// Clients stores OAuth clients.
type Clients interface {
	// CreateClient stores c. ErrConflict when the id exists.
	CreateClient(ctx context.Context, c *Client) error
	// GetClient returns the client with id, or ErrNotFound.
	GetClient(ctx context.Context, id string) (*Client, error)
	// UpdateClient replaces every field but ID and CreatedAt of the client
	// with c.ID, if its Version is still c.Version, atomically, and
	// increments Version (c's too). ErrConflict when the client changed
	// since c was read (a secret rotated meanwhile is never revived);
	// ErrNotFound when it does not exist.
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient removes the client with id. ErrNotFound when it does
	// not exist.
	DeleteClient(ctx context.Context, id string) error
	// ListClients returns an organisation's clients, oldest first, and
	// how many it has in all.
	ListClients(ctx context.Context, organisationID string, p Page) ([]*Client, int, error)
}

// TokenKind names what a stored token is.
type TokenKind string

// The kinds of stored OAuth tokens.
const (
	KindAuthorizeCode TokenKind = "authorize_code"
	KindAccessToken   TokenKind = "access_token"
	KindRefreshToken  TokenKind = "refresh_token"
	KindPKCE          TokenKind = "pkce"
	// KindSession is a sign-in session of the authorization pages (and of
	// an application's pages that share it); its RequestID is the user's
	// id, so all of a user's sessions end together.
	KindSession TokenKind = "session"
)

// Token is one stored OAuth artefact: an authorization code, an access or
// refresh token, or a PKCE challenge. It is found by its signature, the
// part of the token the server can recompute (never the token itself), and
// belongs to a grant identified by RequestID: the code, the tokens issued
// for it, and every token rotated from them share one RequestID, which is
// how a grant is revoked as a whole.
type Token struct {
	Kind           TokenKind
	Signature      string
	RequestID      string
	ClientID       string
	Subject        string
	OrganisationID string
	// Scopes are the granted scopes.
	Scopes      []string
	RequestedAt time.Time
	// ExpiresAt is when the token stops being valid; zero means never.
	ExpiresAt time.Time
	// Active is false once a code is used or a refresh token rotated or
	// revoked. Inactive tokens are still returned by GetToken, so reuse
	// can be detected.
	Active bool
	// RotatedAt is when a refresh token was rotated by [Tokens.RotateToken]
	// (used for a refresh), zero if it never was. Only the grant's most
	// recently rotated token keeps it: RotateToken clears it on the
	// grant's other tokens, and revoking the grant
	// (DeactivateTokensByRequest, DeactivateGrantTokens) clears it on
	// all. A provider's reuse grace period counts from it.
	RotatedAt time.Time
	// Data is the serialised request, opaque to the adapter.
	Data []byte
}

// Tokens stores OAuth tokens.
type Tokens interface {
	// CreateToken stores t. ErrConflict when a token of the same kind and
	// signature exists.
	CreateToken(ctx context.Context, t *Token) error
	// GetToken returns the token of kind with signature, active or not, or
	// ErrNotFound.
	GetToken(ctx context.Context, kind TokenKind, signature string) (*Token, error)
	// DeleteToken removes a token. ErrNotFound when it does not exist.
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateToken marks an active token inactive, atomically: of two
	// concurrent calls for the same token exactly one succeeds and the
	// other gets ErrNotFound, as does a call for a missing or already
	// inactive token. Used codes and rotated refresh tokens rely on it.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	// RotateToken marks an active token inactive and records at as its
	// RotatedAt, atomically as DeactivateToken does (ErrNotFound for a
	// missing or already inactive token: of two concurrent rotations one
	// wins), and clears the RotatedAt of every other token of kind in the
	// token's grant. Rotated refresh tokens rely on it.
	RotateToken(ctx context.Context, kind TokenKind, signature string, at time.Time) error
	// DeactivateTokensByRequest marks every token of kind in the grant
	// inactive, clears the RotatedAt of all of them, and returns how many
	// were active. Against a RotateToken of one of them running beside
	// it, atomically: the rotation fails, or its RotatedAt is cleared
	// (the oauth package learns from it that a refresh under way lost
	// its grant).
	DeactivateTokensByRequest(ctx context.Context, kind TokenKind, requestID string) (int, error)
	// DeleteTokensByRequest removes every token of kind in the grant and
	// returns how many it removed.
	DeleteTokensByRequest(ctx context.Context, kind TokenKind, requestID string) (int, error)
	// DeleteExpiredTokens removes tokens that expired before t and returns
	// how many.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int, error)
	// GrantedClients returns, each once and in no particular order, the
	// ids of the clients that hold an active access or refresh token of
	// subject unexpired at now: the applications a user has authorized.
	GrantedClients(ctx context.Context, subject string, now time.Time) ([]string, error)
	// DeactivateGrantTokens deactivates every active authorization code,
	// access token and refresh token that subject granted clientID,
	// clears the RotatedAt of all of them, and returns how many were
	// active; atomically against RotateToken, as DeactivateTokensByRequest.
	DeactivateGrantTokens(ctx context.Context, subject, clientID string) (int, error)
}

// Consent is a user's remembered permission for a client.
type Consent struct {
	Subject   string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// Consents remembers which scopes a user allowed a client, so the consent
// page can be skipped for scopes already granted.
type Consents interface {
	// GetConsent returns the consent of subject for clientID, or
	// ErrNotFound.
	GetConsent(ctx context.Context, subject, clientID string) (*Consent, error)
	// SaveConsent stores c, replacing an earlier consent of the same
	// subject and client.
	SaveConsent(ctx context.Context, c *Consent) error
	// DeleteConsent forgets a consent. ErrNotFound when there is none.
	DeleteConsent(ctx context.Context, subject, clientID string) error
	// ListConsents returns subject's consents, newest first.
	ListConsents(ctx context.Context, subject string) ([]*Consent, error)
}
