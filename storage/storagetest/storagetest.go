// Package storagetest is the conformance suite for adapters of the
// storage interfaces. Every adapter Gatehouse ships passes it, and so must
// yours: run it from a test in your adapter's package.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			return myadapter.New(openTestDB(t)) // a fresh, empty store
//		})
//	}
//
// newStore is called once per subtest and must return an empty store that
// no other subtest shares (a new schema, prefix or database each time).
// Subtests run in parallel and include concurrency cases: run the suite
// with -race.
//
// [RunInvalidator] checks an implementation of gatehouse.Invalidator
// (the cache invalidations between instances) the same way.
//
// The suite uses only the standard library, so it compiles in any test
// build. It checks times to the microsecond, the precision SQL databases
// keep.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// NewStore returns a fresh, empty store for one subtest.
type NewStore func(t *testing.T) storage.Store

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	groups := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"Organisations", testOrganisations},
		{"Users", testUsers},
		{"Clients", testClients},
		{"Tokens", testTokens},
		{"Consents", testConsents},
		{"APIKeys", testAPIKeys},
		{"Subscriptions", testSubscriptions},
		{"Outbox", testOutbox},
		{"Lookups", testLookups},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.fn(t, newStore) })
	}
}

// now is a fixed instant at microsecond precision.
var epoch = time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)

func ctxT(t *testing.T) context.Context { return t.Context() }

func ok(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", what, err)
	}
}

func is(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

func eq[T comparable](t *testing.T, got, want T, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func sameTime(t *testing.T, got, want time.Time, what string) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: got time %v, want %v", what, got, want)
	}
}

func sameStrings(t *testing.T, got, want []string, what string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func mkOrg(t *testing.T, s storage.Store, prefix string) *storage.Organisation {
	t.Helper()
	o := &storage.Organisation{ID: storage.NewID(), DomainPrefix: prefix, Name: "Org " + prefix, Plan: "standard", CreatedAt: epoch}
	ok(t, s.CreateOrganisation(ctxT(t), o), "create organisation")
	return o
}

func mkUser(t *testing.T, s storage.Store, org, email string) *storage.User {
	t.Helper()
	u := &storage.User{ID: storage.NewID(), OrganisationID: org, Email: email, PasswordHash: "$argon2id$x", FirstName: "Ada", LastName: "Lovelace", CreatedAt: epoch, UpdatedAt: epoch}
	ok(t, s.CreateUser(ctxT(t), u), "create user")
	return u
}

func testOrganisations(t *testing.T, newStore NewStore) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "acme")
		got, err := s.GetOrganisation(ctxT(t), o.ID)
		ok(t, err, "get")
		eq(t, got.DomainPrefix, "acme", "prefix")
		eq(t, got.Name, o.Name, "name")
		eq(t, got.Plan, "standard", "plan")
		sameTime(t, got.CreatedAt, epoch, "created")
		_, err = s.GetOrganisation(ctxT(t), storage.NewID())
		is(t, err, storage.ErrNotFound, "get missing")
	})
	t.Run("PrefixIsCaseInsensitiveAndUnique", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "MixedCase", Name: "M", CreatedAt: epoch}
		ok(t, s.CreateOrganisation(ctxT(t), o), "create")
		got, err := s.GetOrganisationByPrefix(ctxT(t), "mixedcase")
		ok(t, err, "get lower")
		eq(t, got.ID, o.ID, "id")
		eq(t, got.DomainPrefix, "mixedcase", "stored normalised")
		got, err = s.GetOrganisationByPrefix(ctxT(t), "MIXEDCASE")
		ok(t, err, "get upper")
		eq(t, got.ID, o.ID, "id")
		err = s.CreateOrganisation(ctxT(t), &storage.Organisation{ID: storage.NewID(), DomainPrefix: "mixedCASE", CreatedAt: epoch})
		is(t, err, storage.ErrConflict, "duplicate prefix")
		err = s.CreateOrganisation(ctxT(t), &storage.Organisation{ID: o.ID, DomainPrefix: "other", CreatedAt: epoch})
		is(t, err, storage.ErrConflict, "duplicate id")
		_, err = s.GetOrganisationByPrefix(ctxT(t), "nobody")
		is(t, err, storage.ErrNotFound, "missing prefix")
	})
	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "up")
		o.Name, o.Plan = "Renamed", "enterprise"
		ok(t, s.UpdateOrganisation(ctxT(t), o), "update")
		got, err := s.GetOrganisation(ctxT(t), o.ID)
		ok(t, err, "get")
		eq(t, got.Name, "Renamed", "name")
		eq(t, got.Plan, "enterprise", "plan")
		is(t, s.UpdateOrganisation(ctxT(t), &storage.Organisation{ID: storage.NewID()}), storage.ErrNotFound, "update missing")
	})
}

// testLookups: a lookup by text no store can hold (a NUL, bytes that are
// not UTF-8; PostgreSQL refuses both as parameters) is ErrNotFound, as
// any lookup that matches nothing, never another error.
func testLookups(t *testing.T, newStore NewStore) {
	t.Run("TextNoStoreHoldsIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "lookups")
		mkUser(t, s, o.ID, "ada@example.com")
		ctx := ctxT(t)
		for _, bad := range []string{"ada\x00@example.com", "look\x00ups", "\xff\xfe", "ada@example.com\xc3"} {
			for what, get := range map[string]func() error{
				"organisation":           func() error { _, err := s.GetOrganisation(ctx, bad); return err },
				"organisation by prefix": func() error { _, err := s.GetOrganisationByPrefix(ctx, bad); return err },
				"user":                   func() error { _, err := s.GetUser(ctx, bad); return err },
				"user by email":          func() error { _, err := s.GetUserByEmail(ctx, o.ID, bad); return err },
				"user in organisation":   func() error { _, err := s.GetUserByEmail(ctx, bad, "ada@example.com"); return err },
				"client":                 func() error { _, err := s.GetClient(ctx, bad); return err },
				"api key":                func() error { _, err := s.GetAPIKey(ctx, bad); return err },
				"api key by hash":        func() error { _, err := s.GetAPIKeyByHash(ctx, bad); return err },
				"subscription":           func() error { _, err := s.GetSubscription(ctx, bad); return err },
				"delivery":               func() error { _, err := s.GetDelivery(ctx, bad); return err },
			} {
				is(t, get(), storage.ErrNotFound, fmt.Sprintf("%s %q", what, bad))
			}
		}
	})
}

func testUsers(t *testing.T, newStore NewStore) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "u1")
		u := mkUser(t, s, o.ID, "Ada@Example.com")
		got, err := s.GetUser(ctxT(t), u.ID)
		ok(t, err, "get")
		eq(t, got.Email, "Ada@Example.com", "email kept as given")
		eq(t, got.PasswordHash, u.PasswordHash, "hash")
		eq(t, got.FirstName, "Ada", "first")
		eq(t, got.LastName, "Lovelace", "last")
		eq(t, got.OrganisationID, o.ID, "org")
		sameTime(t, got.CreatedAt, epoch, "created")
		_, err = s.GetUser(ctxT(t), storage.NewID())
		is(t, err, storage.ErrNotFound, "missing")
	})
	t.Run("EmailCaseInsensitivePerOrganisation", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := mkOrg(t, s, "ea"), mkOrg(t, s, "eb")
		u := mkUser(t, s, a.ID, "Ada@Example.com")
		got, err := s.GetUserByEmail(ctxT(t), a.ID, "ada@EXAMPLE.com")
		ok(t, err, "by email")
		eq(t, got.ID, u.ID, "id")
		_, err = s.GetUserByEmail(ctxT(t), b.ID, "ada@example.com")
		is(t, err, storage.ErrNotFound, "other org")
		err = s.CreateUser(ctxT(t), &storage.User{ID: storage.NewID(), OrganisationID: a.ID, Email: "ADA@example.COM", CreatedAt: epoch, UpdatedAt: epoch})
		is(t, err, storage.ErrConflict, "duplicate email")
		mkUser(t, s, b.ID, "ada@example.com") // same email, other org: fine
		err = s.CreateUser(ctxT(t), &storage.User{ID: u.ID, OrganisationID: b.ID, Email: "x@y", CreatedAt: epoch, UpdatedAt: epoch})
		is(t, err, storage.ErrConflict, "duplicate id")
	})
	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "uu")
		u := mkUser(t, s, o.ID, "a@example.com")
		other := mkUser(t, s, o.ID, "b@example.com")
		u.Email, u.FirstName, u.PasswordHash, u.UpdatedAt = "new@example.com", "Augusta", "$argon2id$y", epoch.Add(time.Hour)
		ok(t, s.UpdateUser(ctxT(t), u), "update")
		got, err := s.GetUserByEmail(ctxT(t), o.ID, "NEW@example.com")
		ok(t, err, "by new email")
		eq(t, got.FirstName, "Augusta", "first")
		eq(t, got.PasswordHash, "$argon2id$y", "hash")
		sameTime(t, got.UpdatedAt, epoch.Add(time.Hour), "updated")
		_, err = s.GetUserByEmail(ctxT(t), o.ID, "a@example.com")
		is(t, err, storage.ErrNotFound, "old email gone")
		other.Email = "New@Example.com"
		is(t, s.UpdateUser(ctxT(t), other), storage.ErrConflict, "email taken")
		is(t, s.UpdateUser(ctxT(t), &storage.User{ID: storage.NewID(), Email: "z@z"}), storage.ErrNotFound, "missing")
	})
	t.Run("SetPasswordHash", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "ph")
		u := mkUser(t, s, o.ID, "a@example.com")
		hash := func() string {
			t.Helper()
			got, err := s.GetUser(ctxT(t), u.ID)
			ok(t, err, "get")
			return got.PasswordHash
		}
		start := hash()
		// A change of names beside it stands: only the hash is written.
		u.FirstName = "Augusta"
		ok(t, s.UpdateUser(ctxT(t), u), "update names")
		at := epoch.Add(2 * time.Hour)
		ok(t, s.SetPasswordHash(ctxT(t), u.ID, start, "$argon2id$upgraded", at), "conditional, still current")
		got, err := s.GetUser(ctxT(t), u.ID)
		ok(t, err, "get")
		eq(t, got.PasswordHash, "$argon2id$upgraded", "hash")
		eq(t, got.FirstName, "Augusta", "names untouched")
		eq(t, got.Email, "a@example.com", "email untouched")
		sameTime(t, got.UpdatedAt, at, "updated")
		is(t, s.SetPasswordHash(ctxT(t), u.ID, start, "$argon2id$stale", at), storage.ErrConflict, "conditional, changed meanwhile")
		eq(t, hash(), "$argon2id$upgraded", "a refused change writes nothing")
		ok(t, s.SetPasswordHash(ctxT(t), u.ID, "", "$argon2id$set", at), "unconditional")
		eq(t, hash(), "$argon2id$set", "hash")
		is(t, s.SetPasswordHash(ctxT(t), storage.NewID(), "", "$argon2id$x", at), storage.ErrNotFound, "missing, unconditional")
		is(t, s.SetPasswordHash(ctxT(t), storage.NewID(), "$argon2id$set", "$argon2id$x", at), storage.ErrNotFound, "missing, conditional")

		// Of concurrent conditional changes from one hash, one wins.
		oneWins(t, func(i int) error {
			return s.SetPasswordHash(ctxT(t), u.ID, "$argon2id$set", fmt.Sprintf("$argon2id$racer-%d", i), at)
		})
	})
}

func mkClient(t *testing.T, s storage.Store, org string, created time.Time) *storage.Client {
	t.Helper()
	c := &storage.Client{
		ID: storage.NewID(), SecretHash: "sha256$abc", Name: "Booking App", OrganisationID: org,
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: []string{"bookings:read", "bookings:write"}, AccessTokenLifetime: 2 * time.Hour,
		RefreshTokenLifetime: 48 * time.Hour, CreatedAt: created,
	}
	ok(t, s.CreateClient(ctxT(t), c), "create client")
	return c
}

func testClients(t *testing.T, newStore NewStore) {
	t.Run("UpdateIsConditional", func(t *testing.T) {
		// An update from a read before a secret rotation fails instead of
		// reviving the old secret.
		t.Parallel()
		s := newStore(t)
		c := mkClient(t, s, "org", epoch)
		eq(t, c.Version, int64(0), "a new client's version")
		stale, err := s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get")
		c.PreviousSecretHash, c.SecretHash = c.SecretHash, "sha256$rotated"
		ok(t, s.UpdateClient(ctxT(t), c), "rotate")
		eq(t, c.Version, int64(1), "the update increments the caller's version")
		stale.Name = "Stale"
		is(t, s.UpdateClient(ctxT(t), stale), storage.ErrConflict, "an update from a read before the rotation")
		got, err := s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get")
		eq(t, got.SecretHash, "sha256$rotated", "the new secret stands")
		eq(t, got.Name, c.Name, "the stale update wrote nothing")
		eq(t, got.Version, int64(1), "version")
		is(t, s.UpdateClient(ctxT(t), &storage.Client{ID: storage.NewID()}), storage.ErrNotFound, "missing")
		oneWins(t, func(i int) error {
			x := *got
			x.Name = fmt.Sprintf("racer-%d", i)
			return s.UpdateClient(ctxT(t), &x)
		})
	})
	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := mkOrg(t, s, "c1")
		c := mkClient(t, s, o.ID, epoch)
		got, err := s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get")
		eq(t, got.SecretHash, c.SecretHash, "secret hash")
		eq(t, got.Name, c.Name, "name")
		eq(t, got.OrganisationID, o.ID, "org")
		sameStrings(t, got.RedirectURIs, c.RedirectURIs, "redirects")
		sameStrings(t, got.GrantTypes, c.GrantTypes, "grants")
		sameStrings(t, got.ResponseTypes, c.ResponseTypes, "responses")
		sameStrings(t, got.Scopes, c.Scopes, "scopes")
		eq(t, got.Public, false, "public")
		eq(t, got.AccessTokenLifetime, 2*time.Hour, "access lifetime")
		eq(t, got.RefreshTokenLifetime, 48*time.Hour, "refresh lifetime")
		eq(t, got.PreviousSecretHash, "", "no previous secret")
		eq(t, got.PreviousSecretExpiresAt.IsZero(), true, "no previous secret expiry")
		is(t, s.CreateClient(ctxT(t), c), storage.ErrConflict, "duplicate")

		// A rotation keeps the previous secret's hash until it expires.
		c.PreviousSecretHash, c.SecretHash, c.PreviousSecretExpiresAt = c.SecretHash, "sha256$def", epoch.Add(24*time.Hour)
		ok(t, s.UpdateClient(ctxT(t), c), "rotate")
		got, err = s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get rotated")
		eq(t, got.SecretHash, "sha256$def", "new secret hash")
		eq(t, got.PreviousSecretHash, "sha256$abc", "previous secret hash")
		sameTime(t, got.PreviousSecretExpiresAt, epoch.Add(24*time.Hour), "previous secret expiry")

		c.PreviousSecretHash, c.PreviousSecretExpiresAt = "", time.Time{}
		c.Name, c.Public, c.SecretHash, c.Scopes, c.AccessTokenLifetime = "Renamed", true, "", []string{"staff:read"}, storage.NoExpiry
		c.CreatedAt = epoch.Add(time.Hour) // ignored
		ok(t, s.UpdateClient(ctxT(t), c), "update")
		got, err = s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get")
		eq(t, got.Name, "Renamed", "name")
		eq(t, got.Public, true, "public")
		eq(t, got.SecretHash, "", "secret cleared")
		eq(t, got.PreviousSecretHash, "", "previous secret cleared")
		eq(t, got.AccessTokenLifetime, storage.NoExpiry, "no expiry")
		sameStrings(t, got.Scopes, []string{"staff:read"}, "scopes")
		sameTime(t, got.CreatedAt, epoch, "created unchanged")

		ok(t, s.DeleteClient(ctxT(t), c.ID), "delete")
		_, err = s.GetClient(ctxT(t), c.ID)
		is(t, err, storage.ErrNotFound, "gone")
		is(t, s.DeleteClient(ctxT(t), c.ID), storage.ErrNotFound, "delete twice")
		is(t, s.UpdateClient(ctxT(t), c), storage.ErrNotFound, "update missing")
	})
	t.Run("ReturnedValuesAreCopies", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		c := mkClient(t, s, "org", epoch)
		c.RedirectURIs[0] = "https://evil.example/"
		got, err := s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get")
		eq(t, got.RedirectURIs[0], "https://app.example/cb", "caller's slice not shared")
		got.Scopes[0] = "mutated"
		again, err := s.GetClient(ctxT(t), c.ID)
		ok(t, err, "get again")
		eq(t, again.Scopes[0], "bookings:read", "returned slice not shared")
	})
	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var ids []string
		for i := range 5 {
			ids = append(ids, mkClient(t, s, "org-a", epoch.Add(time.Duration(i)*time.Minute)).ID)
		}
		mkClient(t, s, "org-b", epoch)
		got, total, err := s.ListClients(ctxT(t), "org-a", storage.Page{Offset: 1, Limit: 3})
		ok(t, err, "list")
		eq(t, total, 5, "total")
		eq(t, len(got), 3, "page size")
		for i, c := range got {
			eq(t, c.ID, ids[i+1], "order")
		}
		got, total, err = s.ListClients(ctxT(t), "org-a", storage.Page{Offset: 10})
		ok(t, err, "list past end")
		eq(t, len(got), 0, "past end")
		eq(t, total, 5, "total past end")
	})
}

func mkToken(kind storage.TokenKind, req string, exp time.Time) *storage.Token {
	return &storage.Token{
		Kind: kind, Signature: storage.NewID(), RequestID: req, ClientID: "client-1", Subject: "user-1",
		OrganisationID: "org-1", Scopes: []string{"bookings:read"}, RequestedAt: epoch, ExpiresAt: exp,
		Active: true, Data: []byte(`{"opaque":true}`),
	}
}

func testTokens(t *testing.T, newStore NewStore) {
	kinds := []storage.TokenKind{storage.KindAuthorizeCode, storage.KindAccessToken, storage.KindRefreshToken, storage.KindPKCE}
	t.Run("GrantsOfASubject", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		tok := func(kind storage.TokenKind, subject, client string, exp time.Time, active bool) *storage.Token {
			tk := mkToken(kind, storage.NewID(), exp)
			tk.Subject, tk.ClientID, tk.Active = subject, client, active
			ok(t, s.CreateToken(ctxT(t), tk), "create token")
			return tk
		}
		later := epoch.Add(time.Hour)
		tok(storage.KindAccessToken, "u", "app-a", later, true)
		tok(storage.KindRefreshToken, "u", "app-a", time.Time{}, true) // never expires
		tok(storage.KindRefreshToken, "u", "app-b", time.Time{}, true)
		code := tok(storage.KindAuthorizeCode, "u", "app-b", later, true)
		tok(storage.KindAccessToken, "u", "expired", epoch.Add(-time.Second), true)
		tok(storage.KindRefreshToken, "u", "revoked", time.Time{}, false)
		tok(storage.KindAuthorizeCode, "u", "code-only", later, true)
		tok(storage.KindSession, "u", "", later, true)
		other := tok(storage.KindAccessToken, "someone-else", "app-b", later, true)

		ids, err := s.GrantedClients(ctxT(t), "u", epoch)
		ok(t, err, "granted clients")
		slices.Sort(ids)
		sameStrings(t, ids, []string{"app-a", "app-b"}, "clients with a live access or refresh token, each once")

		n, err := s.DeactivateGrantTokens(ctxT(t), "u", "app-b")
		ok(t, err, "deactivate")
		eq(t, n, 2, "app-b's refresh token and code")
		got, err := s.GetToken(ctxT(t), storage.KindAuthorizeCode, code.Signature)
		ok(t, err, "get code")
		eq(t, got.Active, false, "the code is inactive")
		got, err = s.GetToken(ctxT(t), storage.KindAccessToken, other.Signature)
		ok(t, err, "get other user's")
		eq(t, got.Active, true, "another user's token for the same client is untouched")
		ids, err = s.GrantedClients(ctxT(t), "u", epoch)
		ok(t, err, "granted clients after")
		sameStrings(t, ids, []string{"app-a"}, "app-b is gone")
		n, err = s.DeactivateGrantTokens(ctxT(t), "u", "app-b")
		ok(t, err, "deactivate again")
		eq(t, n, 0, "nothing left to deactivate")
	})
	t.Run("CreateGetDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, k := range kinds {
			tok := mkToken(k, "req-1", epoch.Add(time.Hour))
			ok(t, s.CreateToken(ctxT(t), tok), "create "+string(k))
			is(t, s.CreateToken(ctxT(t), tok), storage.ErrConflict, "duplicate "+string(k))
			got, err := s.GetToken(ctxT(t), k, tok.Signature)
			ok(t, err, "get")
			eq(t, got.RequestID, "req-1", "request id")
			eq(t, got.ClientID, "client-1", "client")
			eq(t, got.Subject, "user-1", "subject")
			eq(t, got.OrganisationID, "org-1", "org")
			eq(t, got.Active, true, "active")
			eq(t, got.RotatedAt.IsZero(), true, "never rotated")
			sameStrings(t, got.Scopes, tok.Scopes, "scopes")
			sameTime(t, got.RequestedAt, epoch, "requested")
			sameTime(t, got.ExpiresAt, epoch.Add(time.Hour), "expires")
			if !bytes.Equal(got.Data, tok.Data) {
				t.Fatalf("data: got %q", got.Data)
			}
			ok(t, s.DeleteToken(ctxT(t), k, tok.Signature), "delete")
			_, err = s.GetToken(ctxT(t), k, tok.Signature)
			is(t, err, storage.ErrNotFound, "gone")
			is(t, s.DeleteToken(ctxT(t), k, tok.Signature), storage.ErrNotFound, "delete twice")
		}
	})
	t.Run("KindsAreSeparate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a := mkToken(storage.KindAccessToken, "r", time.Time{})
		ok(t, s.CreateToken(ctxT(t), a), "create")
		r := *a
		r.Kind = storage.KindRefreshToken
		ok(t, s.CreateToken(ctxT(t), &r), "same signature, other kind")
		_, err := s.GetToken(ctxT(t), storage.KindAuthorizeCode, a.Signature)
		is(t, err, storage.ErrNotFound, "other kind")
		got, err := s.GetToken(ctxT(t), storage.KindAccessToken, a.Signature)
		ok(t, err, "get")
		eq(t, got.ExpiresAt.IsZero(), true, "zero expiry kept")
	})
	t.Run("DeactivateIsConditional", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		code := mkToken(storage.KindAuthorizeCode, "r", epoch.Add(10*time.Minute))
		ok(t, s.CreateToken(ctxT(t), code), "create")
		ok(t, s.DeactivateToken(ctxT(t), storage.KindAuthorizeCode, code.Signature), "deactivate")
		got, err := s.GetToken(ctxT(t), storage.KindAuthorizeCode, code.Signature)
		ok(t, err, "inactive tokens are still returned")
		eq(t, got.Active, false, "inactive")
		is(t, s.DeactivateToken(ctxT(t), storage.KindAuthorizeCode, code.Signature), storage.ErrNotFound, "second deactivate")
		is(t, s.DeactivateToken(ctxT(t), storage.KindAuthorizeCode, "missing"), storage.ErrNotFound, "missing")
	})
	for _, end := range []struct {
		name string
		call func(ctx context.Context, s storage.Store, sig string) error
	}{
		{"Deactivate", func(ctx context.Context, s storage.Store, sig string) error {
			return s.DeactivateToken(ctx, storage.KindRefreshToken, sig)
		}},
		{"Rotate", func(ctx context.Context, s storage.Store, sig string) error {
			return s.RotateToken(ctx, storage.KindRefreshToken, sig, epoch)
		}},
	} {
		t.Run("Concurrent"+end.name+"HasOneWinner", func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rt := mkToken(storage.KindRefreshToken, "r", time.Time{})
			ok(t, s.CreateToken(ctxT(t), rt), "create")
			const n = 16
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, losses := 0, 0
			for range n {
				wg.Go(func() {
					err := end.call(ctxT(t), s, rt.Signature)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, storage.ErrNotFound):
						losses++
					default:
						t.Errorf("%s: %v", end.name, err)
					}
				})
			}
			wg.Wait()
			eq(t, wins, 1, "winners")
			eq(t, losses, n-1, "losers")
		})
	}
	t.Run("RotationTimeIsTheGrantsLatest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		at := epoch.Add(90 * time.Second)
		rotatedAt := func(tok *storage.Token) time.Time {
			t.Helper()
			got, err := s.GetToken(ctxT(t), tok.Kind, tok.Signature)
			ok(t, err, "get")
			return got.RotatedAt
		}
		first, second := mkToken(storage.KindRefreshToken, "g", time.Time{}), mkToken(storage.KindRefreshToken, "g", time.Time{})
		other := mkToken(storage.KindRefreshToken, "h", time.Time{})
		other.Subject = "user-2"
		for _, tok := range []*storage.Token{first, second, other} {
			ok(t, s.CreateToken(ctxT(t), tok), "create")
		}
		eq(t, rotatedAt(first).IsZero(), true, "never rotated")

		ok(t, s.RotateToken(ctxT(t), storage.KindRefreshToken, first.Signature, at), "rotate")
		got, err := s.GetToken(ctxT(t), storage.KindRefreshToken, first.Signature)
		ok(t, err, "a rotated token is still returned")
		eq(t, got.Active, false, "rotated is inactive")
		sameTime(t, got.RotatedAt, at, "rotation time")
		is(t, s.RotateToken(ctxT(t), storage.KindRefreshToken, first.Signature, at.Add(time.Second)), storage.ErrNotFound, "rotating twice")
		sameTime(t, rotatedAt(first), at, "a refused rotation changes nothing")
		is(t, s.RotateToken(ctxT(t), storage.KindRefreshToken, "missing", at), storage.ErrNotFound, "missing")
		ok(t, s.RotateToken(ctxT(t), storage.KindRefreshToken, other.Signature, at), "rotate in another grant")

		ok(t, s.RotateToken(ctxT(t), storage.KindRefreshToken, second.Signature, at.Add(time.Minute)), "rotate the grant's next")
		eq(t, rotatedAt(first).IsZero(), true, "the grant's earlier rotation is forgotten")
		sameTime(t, rotatedAt(second), at.Add(time.Minute), "the latest keeps its time")
		sameTime(t, rotatedAt(other), at, "another grant keeps its own")

		third := mkToken(storage.KindRefreshToken, "g", time.Time{})
		ok(t, s.CreateToken(ctxT(t), third), "create")
		n, err := s.DeactivateTokensByRequest(ctxT(t), storage.KindRefreshToken, "g")
		ok(t, err, "revoke the grant")
		eq(t, n, 1, "the active one counted")
		eq(t, rotatedAt(second).IsZero(), true, "revoking the grant forgets its rotation")
		sameTime(t, rotatedAt(other), at, "another grant keeps its own")

		n, err = s.DeactivateGrantTokens(ctxT(t), "user-2", "client-1")
		ok(t, err, "revoke user-2's grant")
		eq(t, n, 0, "nothing active")
		eq(t, rotatedAt(other).IsZero(), true, "revoking a user's grant forgets its rotation")
	})
	t.Run("RevocationBesideARotationForgetsIt", func(t *testing.T) {
		// A grant revoked while one of its refresh tokens rotates: the
		// rotation either fails or its time is cleared, never left
		// standing on a revoked grant (a refresh under way checks it to
		// learn that its grant was revoked). Raced many times, both ways
		// of revoking.
		t.Parallel()
		s := newStore(t)
		for i := range 60 {
			grant := fmt.Sprintf("race-%d", i)
			rt := mkToken(storage.KindRefreshToken, grant, time.Time{})
			rt.Subject = "racer-" + grant
			ok(t, s.CreateToken(ctxT(t), rt), "create")
			var wg sync.WaitGroup
			var rotErr, revErr error
			wg.Go(func() { rotErr = s.RotateToken(ctxT(t), storage.KindRefreshToken, rt.Signature, epoch) })
			wg.Go(func() {
				if i%2 == 0 {
					_, revErr = s.DeactivateTokensByRequest(ctxT(t), storage.KindRefreshToken, grant)
				} else {
					_, revErr = s.DeactivateGrantTokens(ctxT(t), rt.Subject, rt.ClientID)
				}
			})
			wg.Wait()
			ok(t, revErr, "revoke")
			if rotErr != nil {
				is(t, rotErr, storage.ErrNotFound, "a rotation that lost")
			}
			got, err := s.GetToken(ctxT(t), storage.KindRefreshToken, rt.Signature)
			ok(t, err, "get")
			eq(t, got.Active, false, "revoked")
			if !got.RotatedAt.IsZero() {
				t.Fatalf("race %d (rotation: %v): a revoked grant's token kept its rotation time", i, rotErr)
			}
		}
	})
	t.Run("RevokeByRequest", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var family, others []*storage.Token
		for range 3 {
			family = append(family, mkToken(storage.KindAccessToken, "family", time.Time{}), mkToken(storage.KindRefreshToken, "family", time.Time{}))
			others = append(others, mkToken(storage.KindAccessToken, "other", time.Time{}), mkToken(storage.KindRefreshToken, "other", time.Time{}))
		}
		for _, tok := range append(slices.Clone(family), others...) {
			ok(t, s.CreateToken(ctxT(t), tok), "create")
		}
		n, err := s.DeactivateTokensByRequest(ctxT(t), storage.KindRefreshToken, "family")
		ok(t, err, "deactivate family")
		eq(t, n, 3, "deactivated")
		n, err = s.DeactivateTokensByRequest(ctxT(t), storage.KindRefreshToken, "family")
		ok(t, err, "deactivate again")
		eq(t, n, 0, "nothing left to deactivate")
		n, err = s.DeleteTokensByRequest(ctxT(t), storage.KindAccessToken, "family")
		ok(t, err, "delete family")
		eq(t, n, 3, "deleted")
		for _, tok := range family {
			got, err := s.GetToken(ctxT(t), tok.Kind, tok.Signature)
			if tok.Kind == storage.KindAccessToken {
				is(t, err, storage.ErrNotFound, "access deleted")
			} else {
				ok(t, err, "refresh kept")
				eq(t, got.Active, false, "refresh inactive")
			}
		}
		for _, tok := range others {
			got, err := s.GetToken(ctxT(t), tok.Kind, tok.Signature)
			ok(t, err, "other grant untouched")
			eq(t, got.Active, true, "other grant active")
		}
		n, err = s.DeleteTokensByRequest(ctxT(t), storage.KindAccessToken, "nobody")
		ok(t, err, "delete none")
		eq(t, n, 0, "none")
	})
	t.Run("DeleteExpired", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		old := mkToken(storage.KindAccessToken, "r", epoch.Add(-time.Minute))
		fresh := mkToken(storage.KindAccessToken, "r", epoch.Add(time.Minute))
		forever := mkToken(storage.KindAccessToken, "r", time.Time{})
		for _, tok := range []*storage.Token{old, fresh, forever} {
			ok(t, s.CreateToken(ctxT(t), tok), "create")
		}
		n, err := s.DeleteExpiredTokens(ctxT(t), epoch)
		ok(t, err, "delete expired")
		eq(t, n, 1, "deleted")
		_, err = s.GetToken(ctxT(t), storage.KindAccessToken, old.Signature)
		is(t, err, storage.ErrNotFound, "expired gone")
		_, err = s.GetToken(ctxT(t), storage.KindAccessToken, fresh.Signature)
		ok(t, err, "fresh kept")
		_, err = s.GetToken(ctxT(t), storage.KindAccessToken, forever.Signature)
		ok(t, err, "non-expiring kept")
	})
}

func testConsents(t *testing.T, newStore NewStore) {
	t.Run("SaveGetReplaceDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.GetConsent(ctxT(t), "u", "c")
		is(t, err, storage.ErrNotFound, "none yet")
		ok(t, s.SaveConsent(ctxT(t), &storage.Consent{Subject: "u", ClientID: "c", Scopes: []string{"a"}, GrantedAt: epoch}), "save")
		ok(t, s.SaveConsent(ctxT(t), &storage.Consent{Subject: "u", ClientID: "c", Scopes: []string{"a", "b"}, GrantedAt: epoch.Add(time.Hour)}), "replace")
		got, err := s.GetConsent(ctxT(t), "u", "c")
		ok(t, err, "get")
		sameStrings(t, got.Scopes, []string{"a", "b"}, "scopes")
		sameTime(t, got.GrantedAt, epoch.Add(time.Hour), "granted")
		_, err = s.GetConsent(ctxT(t), "u", "other")
		is(t, err, storage.ErrNotFound, "other client")
		ok(t, s.DeleteConsent(ctxT(t), "u", "c"), "delete")
		is(t, s.DeleteConsent(ctxT(t), "u", "c"), storage.ErrNotFound, "delete twice")
	})
	t.Run("ListBySubject", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		none, err := s.ListConsents(ctxT(t), "u")
		ok(t, err, "list none")
		eq(t, len(none), 0, "no consents yet")
		ok(t, s.SaveConsent(ctxT(t), &storage.Consent{Subject: "u", ClientID: "old", Scopes: []string{"a"}, GrantedAt: epoch}), "save old")
		ok(t, s.SaveConsent(ctxT(t), &storage.Consent{Subject: "u", ClientID: "new", Scopes: []string{"a", "b"}, GrantedAt: epoch.Add(time.Hour)}), "save new")
		ok(t, s.SaveConsent(ctxT(t), &storage.Consent{Subject: "someone-else", ClientID: "old", Scopes: []string{"a"}, GrantedAt: epoch}), "save other user's")
		got, err := s.ListConsents(ctxT(t), "u")
		ok(t, err, "list")
		eq(t, len(got), 2, "only the subject's")
		eq(t, got[0].ClientID, "new", "newest first")
		eq(t, got[0].Subject, "u", "subject")
		sameStrings(t, got[0].Scopes, []string{"a", "b"}, "scopes")
		sameTime(t, got[0].GrantedAt, epoch.Add(time.Hour), "granted")
		eq(t, got[1].ClientID, "old", "then the older")
	})
}

// oneWins runs change from 12 goroutines at once and checks that exactly
// one succeeds and the others get ErrConflict.
func oneWins(t *testing.T, change func(i int) error) {
	t.Helper()
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range n {
		wg.Go(func() {
			err := change(i)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, storage.ErrConflict) {
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	eq(t, wins, 1, "winners")
}

func mkKey(t *testing.T, s storage.Store, org string, created time.Time, budget ...func(*storage.APIKey)) *storage.APIKey {
	t.Helper()
	k := &storage.APIKey{
		ID: storage.NewID(), Hash: fmt.Sprintf("%x", storage.NewID()), OrganisationID: org, OwnerID: "user-1",
		Name: "CI", Display: "gate_test_…wxyz", Scopes: []string{"bookings:read"}, Environment: "test",
		CreatedAt: created, RateLimit: "1000/h,100/m", Metadata: map[string]string{"team": "ops"},
	}
	for _, b := range budget {
		b(k)
	}
	ok(t, s.CreateAPIKey(ctxT(t), k), "create key")
	return k
}

func testAPIKeys(t *testing.T, newStore NewStore) {
	t.Run("CreateGetByHash", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		k := mkKey(t, s, "org", epoch)
		for name, get := range map[string]func() (*storage.APIKey, error){
			"by id":   func() (*storage.APIKey, error) { return s.GetAPIKey(ctxT(t), k.ID) },
			"by hash": func() (*storage.APIKey, error) { return s.GetAPIKeyByHash(ctxT(t), k.Hash) },
		} {
			got, err := get()
			ok(t, err, name)
			eq(t, got.ID, k.ID, name+" id")
			eq(t, got.Hash, k.Hash, "hash")
			eq(t, got.OrganisationID, "org", "org")
			eq(t, got.OwnerID, "user-1", "owner")
			eq(t, got.Name, "CI", "name")
			eq(t, got.Display, k.Display, "display")
			eq(t, got.Environment, "test", "env")
			eq(t, got.RateLimit, "1000/h,100/m", "rate limit")
			eq(t, got.Metadata["team"], "ops", "metadata")
			sameStrings(t, got.Scopes, k.Scopes, "scopes")
			sameTime(t, got.CreatedAt, epoch, "created")
			eq(t, got.ExpiresAt.IsZero() && got.RevokedAt.IsZero() && got.LastUsedAt.IsZero(), true, "zero times")
		}
		_, err := s.GetAPIKeyByHash(ctxT(t), "nope")
		is(t, err, storage.ErrNotFound, "missing hash")
		_, err = s.GetAPIKey(ctxT(t), storage.NewID())
		is(t, err, storage.ErrNotFound, "missing id")
		dupHash := *k
		dupHash.ID = storage.NewID()
		is(t, s.CreateAPIKey(ctxT(t), &dupHash), storage.ErrConflict, "duplicate hash")
		dupID := *k
		dupID.Hash = "other"
		is(t, s.CreateAPIKey(ctxT(t), &dupID), storage.ErrConflict, "duplicate id")
	})
	t.Run("ConcurrentCreateNeverCollides", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const n = 20
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				k := &storage.APIKey{ID: storage.NewID(), Hash: storage.NewID(), OrganisationID: "org", Environment: "live", CreatedAt: epoch}
				if err := s.CreateAPIKey(ctxT(t), k); err != nil {
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		// The same hash raced from many goroutines: exactly one wins.
		hash := storage.NewID()
		var mu sync.Mutex
		wins := 0
		for range n {
			wg.Go(func() {
				err := s.CreateAPIKey(ctxT(t), &storage.APIKey{ID: storage.NewID(), Hash: hash, OrganisationID: "org", Environment: "live", CreatedAt: epoch})
				if err != nil && !errors.Is(err, storage.ErrConflict) {
					t.Errorf("create: %v", err)
				}
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, wins, 1, "one winner for one hash")
		_, total, err := s.ListAPIKeys(ctxT(t), "org", storage.Page{})
		ok(t, err, "list")
		eq(t, total, n+1, "all stored")
	})
	t.Run("UpdateRevokeList", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var keys []*storage.APIKey
		for i := range 4 {
			keys = append(keys, mkKey(t, s, "org", epoch.Add(time.Duration(i)*time.Second)))
		}
		mkKey(t, s, "other", epoch)
		k := keys[1]
		k.Name, k.Scopes, k.ExpiresAt, k.RevokedAt, k.RateLimit = "Renamed", []string{"staff:read", "staff:write"}, epoch.Add(24*time.Hour), epoch.Add(time.Minute), ""
		k.Metadata = map[string]string{"a": "b"}
		ok(t, s.UpdateAPIKey(ctxT(t), k), "update")
		got, err := s.GetAPIKeyByHash(ctxT(t), k.Hash)
		ok(t, err, "get")
		eq(t, got.Name, "Renamed", "name")
		sameStrings(t, got.Scopes, []string{"staff:read", "staff:write"}, "scopes")
		sameTime(t, got.ExpiresAt, epoch.Add(24*time.Hour), "expires")
		sameTime(t, got.RevokedAt, epoch.Add(time.Minute), "revoked is visible by hash")
		eq(t, got.RateLimit, "", "rate limit cleared")
		eq(t, got.Metadata["a"], "b", "metadata")
		eq(t, len(got.Metadata), 1, "metadata replaced")
		is(t, s.UpdateAPIKey(ctxT(t), &storage.APIKey{ID: storage.NewID()}), storage.ErrNotFound, "missing")

		list, total, err := s.ListAPIKeys(ctxT(t), "org", storage.Page{Offset: 2, Limit: 5})
		ok(t, err, "list")
		eq(t, total, 4, "total")
		eq(t, len(list), 2, "page")
		eq(t, list[0].ID, keys[2].ID, "order")
		eq(t, list[1].ID, keys[3].ID, "order")
	})
	t.Run("UpdateIsConditional", func(t *testing.T) {
		// An update made from a stale read fails instead of undoing what
		// came between; the uses budget and usage are never written by
		// it, nor change the version.
		t.Parallel()
		s := newStore(t)
		k := mkKey(t, s, "org", epoch, func(k *storage.APIKey) { k.UsesLimited, k.UsesRemaining = true, 10 })
		eq(t, k.Version, int64(0), "a new key's version")
		stale, err := s.GetAPIKey(ctxT(t), k.ID)
		ok(t, err, "get")
		k.RevokedAt = epoch.Add(time.Minute)
		ok(t, s.UpdateAPIKey(ctxT(t), k), "revoke")
		eq(t, k.Version, int64(1), "the update increments the caller's version")
		_, _, err = s.ConsumeAPIKeyUses(ctxT(t), k.ID, 4, epoch)
		ok(t, err, "consume")
		ok(t, s.RecordAPIKeyUses(ctxT(t), []storage.KeyUse{{KeyID: k.ID, At: epoch.Add(time.Hour), IP: "192.0.2.1", Hour: epoch.Truncate(time.Hour), Requests: 1}}), "record")
		got, err := s.GetAPIKey(ctxT(t), k.ID)
		ok(t, err, "get")
		eq(t, got.Version, int64(1), "using the key changes no version")

		stale.Name = "Stale"
		is(t, s.UpdateAPIKey(ctxT(t), stale), storage.ErrConflict, "an update from a read before the revocation")
		got, err = s.GetAPIKey(ctxT(t), k.ID)
		ok(t, err, "get")
		sameTime(t, got.RevokedAt, epoch.Add(time.Minute), "the revocation stands")
		eq(t, got.Name, "CI", "the stale update wrote nothing")

		got.Name, got.UsesRemaining, got.LastUsedIP = "Fresh", 99, "198.51.100.7"
		ok(t, s.UpdateAPIKey(ctxT(t), got), "an update from a fresh read")
		got, err = s.GetAPIKey(ctxT(t), k.ID)
		ok(t, err, "get")
		eq(t, got.Name, "Fresh", "name")
		eq(t, got.Version, int64(2), "version")
		eq(t, got.UsesRemaining, int64(6), "the budget is not the update's to write")
		eq(t, got.LastUsedIP, "192.0.2.1", "nor the usage")

		// Of concurrent updates from one read, one wins.
		oneWins(t, func(i int) error {
			c := *got
			c.Name = fmt.Sprintf("racer-%d", i)
			return s.UpdateAPIKey(ctxT(t), &c)
		})
	})
	t.Run("UsesAndCounters", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		k := mkKey(t, s, "org", epoch)
		h0 := epoch.Truncate(time.Hour)
		ok(t, s.RecordAPIKeyUses(ctxT(t), []storage.KeyUse{
			{KeyID: k.ID, At: epoch.Add(2 * time.Minute), IP: "192.0.2.1", Hour: h0, Requests: 5},
			{KeyID: k.ID, At: epoch.Add(time.Minute), IP: "192.0.2.9", Hour: h0, Requests: 2},
			{KeyID: k.ID, At: epoch.Add(time.Hour), IP: "192.0.2.2", Hour: h0.Add(time.Hour), Requests: 1},
			{KeyID: "unknown", At: epoch, Hour: h0, Requests: 1},
		}), "record")
		ok(t, s.RecordAPIKeyUses(ctxT(t), []storage.KeyUse{{KeyID: k.ID, At: epoch, IP: "198.51.100.1", Hour: h0, Requests: 3}}), "record older")
		got, err := s.GetAPIKey(ctxT(t), k.ID)
		ok(t, err, "get")
		sameTime(t, got.LastUsedAt, epoch.Add(time.Hour), "last used never moves back")
		eq(t, got.LastUsedIP, "192.0.2.2", "last ip")
		hours, days, err := s.APIKeyUsage(ctxT(t), k.ID, h0)
		ok(t, err, "usage")
		eq(t, len(hours), 2, "hour buckets")
		sameTime(t, hours[0].Start, h0, "hour 0")
		eq(t, hours[0].Requests, int64(10), "hour 0 count")
		eq(t, hours[1].Requests, int64(1), "hour 1 count")
		eq(t, len(days), 1, "day buckets")
		eq(t, days[0].Requests, int64(11), "day count")
		hours, _, err = s.APIKeyUsage(ctxT(t), k.ID, h0.Add(time.Hour))
		ok(t, err, "usage since")
		eq(t, len(hours), 1, "since filters")
	})
	t.Run("ConsumeUses", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		unlimited := mkKey(t, s, "org", epoch)
		rem, allowed, err := s.ConsumeAPIKeyUses(ctxT(t), unlimited.ID, 1, epoch)
		ok(t, err, "unlimited")
		eq(t, allowed, true, "unlimited allowed")
		eq(t, rem, int64(-1), "unlimited remaining")

		k := mkKey(t, s, "org", epoch, func(k *storage.APIKey) {
			k.UsesLimited, k.UsesRemaining, k.RefillAmount, k.RefillInterval, k.LastRefillAt = true, 3, 10, time.Hour, epoch
		})
		for want := int64(2); want >= 0; want-- {
			rem, allowed, err = s.ConsumeAPIKeyUses(ctxT(t), k.ID, 1, epoch.Add(time.Minute))
			ok(t, err, "consume")
			eq(t, allowed, true, "allowed")
			eq(t, rem, want, "remaining")
		}
		rem, allowed, err = s.ConsumeAPIKeyUses(ctxT(t), k.ID, 1, epoch.Add(2*time.Minute))
		ok(t, err, "exhausted")
		eq(t, allowed, false, "refused when exhausted")
		eq(t, rem, int64(0), "nothing taken")
		rem, allowed, err = s.ConsumeAPIKeyUses(ctxT(t), k.ID, 4, epoch.Add(time.Hour))
		ok(t, err, "after refill")
		eq(t, allowed, true, "refilled")
		eq(t, rem, int64(6), "refilled to 10, took 4")
		_, _, err = s.ConsumeAPIKeyUses(ctxT(t), storage.NewID(), 1, epoch)
		is(t, err, storage.ErrNotFound, "missing key")
	})
	t.Run("ConcurrentConsumeNeverOverspends", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		k := mkKey(t, s, "org", epoch, func(k *storage.APIKey) { k.UsesLimited, k.UsesRemaining = true, 10 })
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for range 25 {
			wg.Go(func() {
				_, allowed, err := s.ConsumeAPIKeyUses(ctxT(t), k.ID, 1, epoch)
				if err != nil {
					t.Errorf("consume: %v", err)
					return
				}
				if allowed {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, granted, 10, "granted exactly the budget")
	})
}

func mkSub(t *testing.T, s storage.Store, org string, created time.Time) *storage.Subscription {
	t.Helper()
	x := &storage.Subscription{
		ID: storage.NewID(), OrganisationID: org, Environment: "live", URL: "https://hooks.example/in",
		Events: []string{"booking.created", "payment.*"}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		Enabled: true, CreatedAt: created, UpdatedAt: created,
	}
	ok(t, s.CreateSubscription(ctxT(t), x), "create subscription")
	return x
}

func testSubscriptions(t *testing.T, newStore NewStore) {
	t.Run("UpdateIsConditional", func(t *testing.T) {
		// An update from a stale read (a dispatcher's, read before a
		// delivery) fails instead of undoing a new secret.
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		eq(t, x.Version, int64(0), "a new subscription's version")
		stale, err := s.GetSubscription(ctxT(t), x.ID)
		ok(t, err, "get")
		x.PreviousSecret, x.Secret = x.Secret, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
		ok(t, s.UpdateSubscription(ctxT(t), x), "rotate")
		eq(t, x.Version, int64(1), "the update increments the caller's version")
		stale.FailingSince = epoch.Add(time.Minute)
		is(t, s.UpdateSubscription(ctxT(t), stale), storage.ErrConflict, "an update from a read before the rotation")
		got, err := s.GetSubscription(ctxT(t), x.ID)
		ok(t, err, "get")
		eq(t, got.Secret, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "the new secret stands")
		eq(t, got.FailingSince.IsZero(), true, "the stale update wrote nothing")
		eq(t, got.Version, int64(1), "version")
		is(t, s.UpdateSubscription(ctxT(t), &storage.Subscription{ID: storage.NewID()}), storage.ErrNotFound, "missing")
		oneWins(t, func(i int) error {
			c := *got
			c.DisabledReason = fmt.Sprintf("racer-%d", i)
			return s.UpdateSubscription(ctxT(t), &c)
		})
	})
	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		mkSub(t, s, "org", epoch.Add(time.Second))
		mkSub(t, s, "other", epoch)
		got, err := s.GetSubscription(ctxT(t), x.ID)
		ok(t, err, "get")
		eq(t, got.URL, x.URL, "url")
		eq(t, got.Secret, x.Secret, "secret round-trips")
		eq(t, got.Environment, "live", "env")
		eq(t, got.Enabled, true, "enabled")
		sameStrings(t, got.Events, x.Events, "events")
		is(t, s.CreateSubscription(ctxT(t), x), storage.ErrConflict, "duplicate")

		list, err := s.ListSubscriptions(ctxT(t), "org")
		ok(t, err, "list")
		eq(t, len(list), 2, "org's subscriptions")
		eq(t, list[0].ID, x.ID, "oldest first")

		x.PreviousSecret, x.Secret = x.Secret, "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldw=="
		x.PreviousSecretExpiresAt = epoch.Add(24 * time.Hour)
		x.Enabled, x.DisabledReason, x.FailingSince = false, "endpoint answered 410 Gone", epoch.Add(time.Hour)
		x.Events = []string{"*"}
		x.OrganisationID = "hijack" // ignored
		ok(t, s.UpdateSubscription(ctxT(t), x), "update")
		got, err = s.GetSubscription(ctxT(t), x.ID)
		ok(t, err, "get")
		eq(t, got.OrganisationID, "org", "organisation cannot change")
		eq(t, got.PreviousSecret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "previous secret")
		eq(t, got.Secret, x.Secret, "new secret")
		sameTime(t, got.PreviousSecretExpiresAt, epoch.Add(24*time.Hour), "previous expiry")
		eq(t, got.Enabled, false, "disabled")
		eq(t, got.DisabledReason, x.DisabledReason, "reason")
		sameTime(t, got.FailingSince, epoch.Add(time.Hour), "failing since")
		sameStrings(t, got.Events, []string{"*"}, "events")

		ok(t, s.DeleteSubscription(ctxT(t), x.ID), "delete")
		_, err = s.GetSubscription(ctxT(t), x.ID)
		is(t, err, storage.ErrNotFound, "gone")
		is(t, s.DeleteSubscription(ctxT(t), x.ID), storage.ErrNotFound, "delete twice")
		is(t, s.UpdateSubscription(ctxT(t), x), storage.ErrNotFound, "update missing")
	})
}

func mkEvent(org string, at time.Time) *storage.Event {
	return &storage.Event{ID: storage.NewID(), OrganisationID: org, Environment: "live", Type: "booking.created",
		Payload: []byte(`{"type":"booking.created","data":{"id":"b1"}}`), CreatedAt: at}
}

func testOutbox(t *testing.T, newStore NewStore) {
	t.Run("EnqueueClaimComplete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a, b := mkSub(t, s, "org", epoch), mkSub(t, s, "org", epoch)
		e := mkEvent("org", epoch)
		ok(t, s.Enqueue(ctxT(t), e, []string{a.ID, b.ID}), "enqueue")
		is(t, s.Enqueue(ctxT(t), e, []string{a.ID}), storage.ErrConflict, "duplicate event")

		none, err := s.ClaimDeliveries(ctxT(t), "w1", epoch.Add(-time.Second), time.Minute, 10, nil)
		ok(t, err, "claim before due")
		eq(t, len(none), 0, "nothing due yet")

		ds, err := s.ClaimDeliveries(ctxT(t), "w1", epoch, time.Minute, 10, nil)
		ok(t, err, "claim")
		eq(t, len(ds), 2, "one delivery per subscription")
		d := ds[0]
		eq(t, d.EventID, e.ID, "event id")
		eq(t, d.EventType, "booking.created", "type")
		eq(t, d.OrganisationID, "org", "org")
		eq(t, string(d.Payload), string(e.Payload), "payload")
		eq(t, d.Status, storage.DeliveryPending, "pending while leased")
		eq(t, d.LeaseOwner, "w1", "owner")
		eq(t, d.LeaseID != "", true, "lease id")
		sameTime(t, d.LeaseExpiresAt, epoch.Add(time.Minute), "lease expiry")
		eq(t, ds[0].LeaseID != ds[1].LeaseID, true, "lease ids differ")

		again, err := s.ClaimDeliveries(ctxT(t), "w2", epoch.Add(30*time.Second), time.Minute, 10, nil)
		ok(t, err, "claim while leased")
		eq(t, len(again), 0, "leased deliveries are not claimed")

		ok(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{
			DeliveryID: d.ID, LeaseID: d.LeaseID, Status: storage.DeliveryDelivered,
			Attempt: storage.Attempt{At: epoch.Add(time.Second), Duration: 42 * time.Millisecond, StatusCode: 200, ResponseBody: "ok"},
		}), "complete")
		got, err := s.GetDelivery(ctxT(t), d.ID)
		ok(t, err, "get")
		eq(t, got.Status, storage.DeliveryDelivered, "delivered")
		eq(t, got.Attempts, 1, "attempts")
		eq(t, got.LastStatusCode, 200, "status code")
		eq(t, got.LeaseID, "", "lease cleared")
		atts, err := s.ListAttempts(ctxT(t), d.ID)
		ok(t, err, "attempts")
		eq(t, len(atts), 1, "one attempt")
		eq(t, atts[0].StatusCode, 200, "attempt status")
		eq(t, atts[0].Duration, 42*time.Millisecond, "attempt duration")
		eq(t, atts[0].ResponseBody, "ok", "attempt body")
		sameTime(t, atts[0].At, epoch.Add(time.Second), "attempt time")

		is(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{DeliveryID: d.ID, LeaseID: d.LeaseID, Status: storage.DeliveryFailed}),
			storage.ErrLeaseLost, "completing twice")
		is(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{DeliveryID: storage.NewID(), LeaseID: "x", Status: storage.DeliveryFailed}),
			storage.ErrNotFound, "missing delivery")
	})
	t.Run("ClaimPassesOverSkippedSubscriptions", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		busy, other := mkSub(t, s, "org", epoch), mkSub(t, s, "org", epoch)
		for i := range 3 { // the busy endpoint's backlog is due first
			ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch.Add(time.Duration(i)*time.Millisecond)), []string{busy.ID}), "enqueue busy")
		}
		ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch.Add(time.Second)), []string{other.ID}), "enqueue other")
		later := epoch.Add(time.Minute)

		ds, err := s.ClaimDeliveries(ctxT(t), "w", later, time.Minute, 1, []string{busy.ID})
		ok(t, err, "claim skipping the busy endpoint")
		eq(t, len(ds), 1, "one claimed")
		eq(t, ds[0].SubscriptionID, other.ID, "the other endpoint's delivery, though the busy one's are due first")
		none, err := s.ClaimDeliveries(ctxT(t), "w", later, time.Minute, 10, []string{busy.ID, other.ID})
		ok(t, err, "claim skipping both")
		eq(t, len(none), 0, "nothing of skipped endpoints")
		rest, err := s.ClaimDeliveries(ctxT(t), "w", later, time.Minute, 10, nil)
		ok(t, err, "claim without skipping")
		eq(t, len(rest), 3, "the busy endpoint's backlog")
		for _, d := range rest {
			eq(t, d.SubscriptionID, busy.ID, "busy endpoint")
		}
	})
	t.Run("RetryScheduleAndFailure", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch), []string{x.ID}), "enqueue")
		ds, err := s.ClaimDeliveries(ctxT(t), "w", epoch, time.Minute, 1, nil)
		ok(t, err, "claim")
		eq(t, len(ds), 1, "claimed")
		ok(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{
			DeliveryID: ds[0].ID, LeaseID: ds[0].LeaseID, Status: storage.DeliveryPending, NextAttemptAt: epoch.Add(5 * time.Second),
			Attempt: storage.Attempt{At: epoch, StatusCode: 503, Error: "status 503"},
		}), "reschedule")
		early, err := s.ClaimDeliveries(ctxT(t), "w", epoch.Add(4*time.Second), time.Minute, 1, nil)
		ok(t, err, "claim early")
		eq(t, len(early), 0, "not due before its next attempt")
		ds, err = s.ClaimDeliveries(ctxT(t), "w", epoch.Add(5*time.Second), time.Minute, 1, nil)
		ok(t, err, "claim due")
		eq(t, len(ds), 1, "due")
		eq(t, ds[0].Attempts, 1, "attempts so far")
		eq(t, ds[0].LastError, "status 503", "last error")
		ok(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{
			DeliveryID: ds[0].ID, LeaseID: ds[0].LeaseID, Status: storage.DeliveryFailed,
			Attempt: storage.Attempt{At: epoch.Add(5 * time.Second), Error: "timeout"},
		}), "dead-letter")
		none, err := s.ClaimDeliveries(ctxT(t), "w", epoch.Add(time.Hour), time.Minute, 10, nil)
		ok(t, err, "claim failed")
		eq(t, len(none), 0, "failed deliveries are not claimed")

		n, err := s.RedeliverFailed(ctxT(t), x.ID, epoch.Add(time.Second), epoch.Add(time.Hour))
		ok(t, err, "redeliver failed since later")
		eq(t, n, 0, "created before since")
		n, err = s.RedeliverFailed(ctxT(t), x.ID, epoch, epoch.Add(time.Hour))
		ok(t, err, "redeliver failed")
		eq(t, n, 1, "recovered")
		ds, err = s.ClaimDeliveries(ctxT(t), "w", epoch.Add(time.Hour), time.Minute, 10, nil)
		ok(t, err, "claim recovered")
		eq(t, len(ds), 1, "recovered delivery is due")
		eq(t, ds[0].Attempts, 2, "attempts kept")

		ok(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{DeliveryID: ds[0].ID, LeaseID: ds[0].LeaseID, Status: storage.DeliveryDelivered,
			Attempt: storage.Attempt{At: epoch.Add(time.Hour), StatusCode: 204}}), "deliver")
		ok(t, s.Redeliver(ctxT(t), ds[0].ID, epoch.Add(2*time.Hour)), "manual redeliver")
		got, err := s.GetDelivery(ctxT(t), ds[0].ID)
		ok(t, err, "get")
		eq(t, got.Status, storage.DeliveryPending, "pending again")
		sameTime(t, got.NextAttemptAt, epoch.Add(2*time.Hour), "due at now")
		is(t, s.Redeliver(ctxT(t), storage.NewID(), epoch), storage.ErrNotFound, "redeliver missing")
		atts, err := s.ListAttempts(ctxT(t), ds[0].ID)
		ok(t, err, "attempts")
		eq(t, len(atts), 3, "every attempt kept")
	})
	t.Run("ExpiredLeaseIsReclaimedAndFenced", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch), []string{x.ID}), "enqueue")
		first, err := s.ClaimDeliveries(ctxT(t), "dies", epoch, time.Minute, 1, nil)
		ok(t, err, "claim")
		eq(t, len(first), 1, "claimed")
		// The first worker never reports back. After its lease, another claims.
		second, err := s.ClaimDeliveries(ctxT(t), "survivor", epoch.Add(time.Minute), time.Minute, 1, nil)
		ok(t, err, "reclaim")
		eq(t, len(second), 1, "reclaimed after the lease")
		eq(t, second[0].ID, first[0].ID, "same delivery")
		eq(t, second[0].LeaseOwner, "survivor", "new owner")
		// The first worker wakes up late: its result must not clobber.
		is(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{DeliveryID: first[0].ID, LeaseID: first[0].LeaseID, Status: storage.DeliveryFailed,
			Attempt: storage.Attempt{At: epoch.Add(61 * time.Second)}}), storage.ErrLeaseLost, "stale lease")
		is(t, s.ReleaseDelivery(ctxT(t), first[0].ID, first[0].LeaseID), storage.ErrLeaseLost, "stale release")
		ok(t, s.CompleteDelivery(ctxT(t), storage.DeliveryResult{DeliveryID: second[0].ID, LeaseID: second[0].LeaseID, Status: storage.DeliveryDelivered,
			Attempt: storage.Attempt{At: epoch.Add(62 * time.Second), StatusCode: 200}}), "complete")
		got, err := s.GetDelivery(ctxT(t), first[0].ID)
		ok(t, err, "get")
		eq(t, got.Status, storage.DeliveryDelivered, "survivor's result stands")
		eq(t, got.Attempts, 1, "one recorded attempt")
	})
	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch), []string{x.ID}), "enqueue")
		ds, err := s.ClaimDeliveries(ctxT(t), "w", epoch, time.Hour, 1, nil)
		ok(t, err, "claim")
		ok(t, s.ReleaseDelivery(ctxT(t), ds[0].ID, ds[0].LeaseID), "release")
		again, err := s.ClaimDeliveries(ctxT(t), "w2", epoch, time.Hour, 1, nil)
		ok(t, err, "claim released")
		eq(t, len(again), 1, "released delivery is claimable at once")
		eq(t, again[0].Attempts, 0, "release is not an attempt")
	})
	t.Run("ListDeliveries", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		var events []*storage.Event
		for i := range 5 {
			e := mkEvent("org", epoch.Add(time.Duration(i)*time.Second))
			events = append(events, e)
			ok(t, s.Enqueue(ctxT(t), e, []string{x.ID}), "enqueue")
		}
		list, err := s.ListDeliveries(ctxT(t), x.ID, storage.Page{Limit: 2})
		ok(t, err, "list")
		eq(t, len(list), 2, "page")
		eq(t, list[0].EventID, events[4].ID, "newest first")
		eq(t, list[1].EventID, events[3].ID, "newest first")
		ok(t, s.DeleteSubscription(ctxT(t), x.ID), "delete subscription")
		list, err = s.ListDeliveries(ctxT(t), x.ID, storage.Page{})
		ok(t, err, "list after delete")
		eq(t, len(list), 0, "pending deliveries removed with the subscription")
	})
	t.Run("ConcurrentClaimsNeverOverlap", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		x := mkSub(t, s, "org", epoch)
		const events = 60
		for range events {
			ok(t, s.Enqueue(ctxT(t), mkEvent("org", epoch), []string{x.ID}), "enqueue")
		}
		var mu sync.Mutex
		seen := map[string]string{}
		var wg sync.WaitGroup
		for w := range 6 {
			owner := fmt.Sprintf("worker-%d", w)
			wg.Go(func() {
				for {
					ds, err := s.ClaimDeliveries(ctxT(t), owner, epoch, time.Hour, 4, nil)
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						if prev, dup := seen[d.ID]; dup {
							t.Errorf("delivery %s claimed by %s and %s", d.ID, prev, owner)
						}
						seen[d.ID] = owner
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		eq(t, len(seen), events, "every delivery claimed exactly once")
	})
}
