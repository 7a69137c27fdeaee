// Package oauth is an OAuth 2.0 authorization server and resource-server
// authenticator built on github.com/ory/fosite, embeddable in a few lines:
//
//	p, err := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: secret32})
//	mux.Handle("/oauth/", p.Handler())
//	mux.Handle("/.well-known/oauth-authorization-server", p.Handler())
//	chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
//
// # Grants
//
// Authorization code with PKCE (S256 only; required for public clients),
// implicit (response_type=token, the token in the redirect's fragment;
// enabled per client — RFC 9700 discourages it, prefer the code flow),
// resource-owner password with TidyHQ's domain_prefix naming the
// organisation (required), client credentials, and refresh tokens, issued
// to every client allowed the refresh_token grant without an offline
// scope, rotated on use; reusing a rotated refresh token revokes the whole
// grant. Revocation (RFC 7009), introspection (RFC 7662, authenticated
// clients only, client_secret_basic or client_secret_post) and metadata
// (RFC 8414).
//
// Users never implement a fosite interface: the provider adapts the
// storage interfaces ([Store]) internally, with compile-time checks.
//
// # Sign-in and consent
//
// The authorize endpoint renders a sign-in page (organisation, email,
// password) and a consent page listing each requested scope with its
// catalog description; allow, deny (error=access_denied), and remembered
// consent, which adds up: scopes allowed later join those allowed before,
// and a request for scopes all allowed once skips the page. Forms carry a CSRF token bound to a cookie and are wrapped in
// http.CrossOriginProtection; pages send X-Frame-Options: DENY and
// frame-ancestors 'none'. state is required (fosite: at least 8
// characters) and returned on every redirect; Config.AllowMissingState
// lets an absent one through, for clients built on TidyHQ's documented
// URLs, which send none.
//
// # Secrets
//
// Client secrets are 256-bit random strings, hashed with SHA-256 (HMAC
// with a pepper) — sub-microsecond, where fosite's bcrypt default costs
// tens of milliseconds per token request — and bcrypt hashes from
// elsewhere still verify. User passwords are argon2id; users imported
// from another system keep theirs: bcrypt hashes verify as they are, and
// another format (Django's PBKDF2, say) through Config.LegacyPasswords,
// each replaced by an argon2id hash at the user's next sign-in. Until
// then a sign-in to such an account takes the old format's time, not
// argon2id's (which an unknown account's takes), so the time of a
// failed sign-in can tell an account not yet upgraded from none: import,
// then have the users sign in. Failed sign-ins
// are limited per account and per client address, counted in
// Config.LoginLimiter: give every instance the same Redis limiter and
// they share one count.
//
// [Provider.ConnectedApps] lists the applications a user has authorized
// (remembered consents, and clients holding the user's tokens);
// [Provider.Disconnect] ends one application's tokens and forgets its
// consent.
//
// # Tokens
//
// Tokens are opaque HMAC tokens with prefixes (gate_at_, gate_rt_,
// gate_ac_) so secret scanners and the authenticator chain recognise them.
// [ResourceAuthenticator] validates them with a bounded cache (CacheTTL,
// 5 s by default): a revocation is honoured at once on the instance that
// revoked, and within CacheTTL on others, or at once on them too when
// the providers share a Config.Invalidator (sqlstore's, on PostgreSQL). Lifetimes: access 1 h, refresh
// 30 days, codes 10 min; a client may override them, including access
// tokens that do not expire ("expires_in": null, as TidyHQ's).
//
// # JWT access tokens
//
// With Config.JWTKeys, access tokens are RFC 9068 JWTs (typ at+jwt, ES256,
// claims iss, sub, aud, exp, iat, jti, client_id, scope and org) signed by
// a rotating [KeySet] published at /.well-known/jwks.json. [JWTVerifier]
// checks them in another service with go-jose v4 and a caching JWKS
// fetcher, with no database round trip; the provider's own authenticator
// also checks storage, so a revoked JWT is refused there at once (a
// standalone verifier honours revocation only at expiry: keep JWT
// lifetimes short). [RemoteIntrospector] is the authenticator for resource
// servers that keep opaque tokens: it asks an RFC 7662 endpoint and caches
// the answer for a bounded time.
//
// Every instance must sign and verify with the same keys, and keep them
// across restarts: make the set once, store [KeySet.Export]'s output with
// the deployment's other secrets, and load it with [ParseKeySet] on each
// instance. [KeySet.Stage] and [KeySet.Promote] rotate it so that no
// instance or verifier ever meets a token signed by a key it has not
// been shown.
package oauth
