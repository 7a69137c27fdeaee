package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

const adminUsage = `usage:
  server admin org create --prefix acme --name "Acme Ltd" [--plan standard|enterprise|"5000/h,500/m"] [--sandbox-data=false]   (the sandbox gets test customers, bookings, payments and staff unless false)
  server admin user create --org acme --email ada@example.com --password '…' [--first-name Ada --last-name Lovelace]
  server admin user create --org acme --email ada@example.com --password-hash '$2b$12$…'   (a user imported with their bcrypt hash)
  server admin user set-password --org acme --email ada@example.com --password '…'   (ends the user's sign-in sessions)
  server admin client create --org acme --name "Booking App" --redirect-uri URL [--redirect-uri URL …] --scopes "bookings:read" [--public] [--grants authorization_code,refresh_token]
  server admin client rotate-secret --id CLIENT_ID [--grace 24h]
  server admin key create --org acme [--user ada@example.com] --name "CI" --scopes "bookings:read" [--env live|test] [--rate-limit "1000/h,100/m"] [--expires 720h]
  server admin key list --org acme   (the organisation's keys, revoked and expired ones too)
  server admin key find --key -   (the stored key a leaked key names: --key - reads it from stdin, out of shell history and ps)
  server admin key revoke --id ID | --key -
  server admin client update --id CLIENT_ID [--name "Booking App 2"] [--redirect-uri URL …] [--scopes "bookings:read payments:read"] [--grants authorization_code,refresh_token]
                                           (only what is given changes; a scope removed stops at once in the tokens already issued)
  server admin key update --id ID [--name "CI"] [--scopes "bookings:read"] [--rate-limit "1000/h,100/m" | --rate-limit ""]
  server admin client delete --id CLIENT_ID   (its tokens and its users' consents end at once on every instance)
  server admin jwt-keys show | stage | promote --id KID | remove --id KID
every command takes -db (default sqlite:gatehouse.db) and prints one JSON object`

// runAdmin runs an admin subcommand and prints one JSON object.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return errors.New(adminUsage)
	}
	what := args[0] + " " + args[1]
	fs := flag.NewFlagSet("admin "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	commonFlags(fs, &o)
	var (
		prefix, name, plan, org, email, password, hash, first, last, scopes, grants, user, env, rate, expires, id string
		public, sandbox                                                                                           bool
		redirects                                                                                                 list
	)
	fs.StringVar(&prefix, "prefix", "", "organisation domain prefix")
	fs.StringVar(&name, "name", "", "name")
	fs.BoolVar(&sandbox, "sandbox-data", true, "org create: give the organisation's sandbox (its test environment) test customers, bookings, payments and staff")
	fs.StringVar(&plan, "plan", "standard", "plan: standard, enterprise, or a custom policy such as 5000/h,500/m")
	fs.StringVar(&org, "org", "", "organisation domain prefix")
	fs.StringVar(&email, "email", "", "user email")
	fs.StringVar(&password, "password", "", "user password")
	fs.StringVar(&hash, "password-hash", "", "user create: the hash another system stored (bcrypt or argon2id) instead of a password; argon2id from the first sign-in")
	fs.StringVar(&first, "first-name", "", "first name")
	fs.StringVar(&last, "last-name", "", "last name")
	fs.StringVar(&scopes, "scopes", "", "space-separated scopes")
	fs.StringVar(&grants, "grants", "authorization_code,refresh_token", "comma-separated grants")
	fs.Var(&redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.BoolVar(&public, "public", false, "public client (no secret, PKCE)")
	fs.StringVar(&user, "user", "", "email of the key's owner")
	fs.StringVar(&env, "env", "test", "key environment: live or test")
	fs.StringVar(&rate, "rate-limit", "", "key rate-limit override such as 1000/h,100/m")
	fs.StringVar(&expires, "expires", "", "key lifetime such as 720h")
	fs.StringVar(&id, "id", "", "key, client or JWT key id")
	var keyText string
	fs.StringVar(&keyText, "key", "", "key find, key revoke: the key itself, or - to read it from stdin")
	var grace time.Duration
	fs.DurationVar(&grace, "grace", 24*time.Hour, "how long a rotated client secret keeps working (0: not at all)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	given := map[string]bool{} // the flags on the command line, for the updates
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	quiet := slog.New(slog.DiscardHandler)
	store, err := openStore(ctx, o.db, quiet)
	if err != nil {
		return err
	}
	defer store.Close()
	a, err := newApp(ctx, store, appConfig{Issuer: "http://127.0.0.1", Secret: make([]byte, 32), Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{}), Logger: quiet})
	if err != nil {
		return err
	}
	defer a.keys.Close(ctx)
	orgByPrefix := func() (*storage.Organisation, error) {
		if org == "" {
			return nil, errors.New("--org is required")
		}
		o, err := store.GetOrganisationByPrefix(ctx, org)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("no organisation with domain prefix %q", org)
		}
		return o, err
	}

	switch what {
	case "org create":
		if prefix == "" || name == "" {
			return errors.New("--prefix and --name are required")
		}
		if !storage.ValidPrefix(prefix) {
			return fmt.Errorf("--prefix %q must be 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen", prefix)
		}
		if !storage.ValidText(name) {
			return fmt.Errorf("--name %s", storage.TextIssue)
		}
		if plan != "standard" && plan != "enterprise" {
			// A custom plan: the seed's "custom limits per customer".
			if _, err := ratelimit.ParsePolicy(plan); err != nil {
				return fmt.Errorf("--plan must be standard, enterprise or a policy such as 5000/h,500/m: %w", err)
			}
		}
		o := &storage.Organisation{ID: storage.NewID(), DomainPrefix: storage.NormalizePrefix(prefix), Name: name, Plan: plan, CreatedAt: time.Now().UTC()}
		var seeded sandboxData
		err := store.InTx(ctx, func(ctx context.Context) error {
			if err := store.CreateOrganisation(ctx, o); err != nil {
				return err
			}
			if !sandbox {
				return nil
			}
			var err error
			seeded, err = a.records.seedSandbox(ctx, o.ID)
			return err
		})
		if errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("the domain prefix %q is taken", prefix)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"id": o.ID, "domain_prefix": o.DomainPrefix, "name": o.Name, "plan": o.Plan, "sandbox_data": seeded})
	case "user create":
		o, err := orgByPrefix()
		if err != nil {
			return err
		}
		u, err := a.provider.CreateUser(ctx, oauth.UserParams{OrganisationID: o.ID, Email: email, Password: password, PasswordHash: hash, FirstName: first, LastName: last})
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]string{"id": u.ID, "email": u.Email, "organisation_id": o.ID})
	case "user set-password":
		o, err := orgByPrefix()
		if err != nil {
			return err
		}
		u, err := store.GetUserByEmail(ctx, o.ID, email)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no user %q in %q", email, org)
		}
		if err != nil {
			return err
		}
		if err := a.provider.SetPassword(ctx, u.ID, password); err != nil {
			return err
		}
		return printJSON(stdout, map[string]string{"id": u.ID, "email": u.Email, "organisation_id": o.ID})
	case "client create":
		o, err := orgByPrefix()
		if err != nil {
			return err
		}
		secret, c, err := a.provider.RegisterClient(ctx, oauth.ClientParams{OrganisationID: o.ID, Name: name, RedirectURIs: redirects,
			Grants: strings.Split(grants, ","), Scopes: strings.Fields(scopes), Public: public})
		if err != nil {
			return err
		}
		out := map[string]any{"client_id": c.ID, "client_secret": secret}
		if public {
			out["client_secret"] = nil
		}
		return printJSON(stdout, out)
	case "client rotate-secret":
		if id == "" {
			return errors.New("--id is required")
		}
		secret, c, err := a.provider.RotateClientSecret(ctx, id, grace)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no client %q", id)
		}
		if err != nil {
			return err
		}
		out := map[string]any{"client_id": c.ID, "client_secret": secret, "previous_secret_valid_until": nil}
		if !c.PreviousSecretExpiresAt.IsZero() {
			out["previous_secret_valid_until"] = c.PreviousSecretExpiresAt.Format(time.RFC3339)
		}
		return printJSON(stdout, out)
	case "key create":
		o, err := orgByPrefix()
		if err != nil {
			return err
		}
		p := apikey.CreateParams{OrganisationID: o.ID, Name: name, Scopes: strings.Fields(scopes), Environment: gatehouse.Environment(env), RateLimit: rate}
		if err := checkRate(rate); err != nil {
			return err
		}
		if user != "" {
			u, err := store.GetUserByEmail(ctx, o.ID, user)
			if err != nil {
				return fmt.Errorf("--user: no user %q in %s", user, org)
			}
			p.OwnerID = u.ID
		}
		if expires != "" {
			d, err := time.ParseDuration(expires)
			if err != nil || d <= 0 {
				return errors.New("--expires must be a positive duration such as 720h")
			}
			p.ExpiresAt = time.Now().Add(d)
		}
		secret, k, err := a.keys.Create(ctx, p)
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]string{"id": k.ID, "key": secret.Reveal(), "display": k.Display, "environment": k.Environment})
	case "key list":
		o, err := orgByPrefix()
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for page := (storage.Page{Limit: 100}); ; page.Offset += page.Limit {
			ks, total, err := a.keys.List(ctx, o.ID, page)
			if err != nil {
				return err
			}
			for _, k := range ks {
				out = append(out, keyJSON(k))
			}
			if len(ks) == 0 || page.Offset+len(ks) >= total {
				break
			}
		}
		return printJSON(stdout, map[string]any{"organisation": o.DomainPrefix, "keys": out})
	case "key find":
		k, err := findKey(ctx, a.keys, keyText)
		if err != nil {
			return err
		}
		return printJSON(stdout, keyJSON(k))
	case "key revoke":
		switch {
		case id != "" && keyText != "":
			return errors.New("--id or --key, not both")
		case keyText != "":
			k, err := findKey(ctx, a.keys, keyText)
			if err != nil {
				return err
			}
			id = k.ID
		case id == "":
			return errors.New("--id or --key is required")
		}
		k, err := a.keys.Revoke(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no key %q", id)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]string{"id": k.ID, "revoked_at": k.RevokedAt.Format(time.RFC3339)})
	case "client update":
		if id == "" {
			return errors.New("--id is required")
		}
		var u oauth.ClientUpdate
		if given["name"] {
			u.Name = &name
		}
		if given["redirect-uri"] {
			u.RedirectURIs = redirects
		}
		if given["scopes"] {
			u.Scopes = strings.Fields(scopes)
		}
		if given["grants"] {
			u.Grants = strings.Split(grants, ",")
		}
		if u.Name == nil && u.RedirectURIs == nil && u.Scopes == nil && u.Grants == nil {
			return errors.New("give at least one of --name, --redirect-uri, --scopes, --grants")
		}
		c, err := a.provider.UpdateClient(ctx, id, u)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no client %q", id)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"client_id": c.ID, "name": c.Name, "redirect_uris": c.RedirectURIs, "scopes": c.Scopes,
			"grants": oauth.Grants(c)})
	case "key update":
		if id == "" {
			return errors.New("--id is required")
		}
		var u apikey.UpdateParams
		if given["name"] {
			u.Name = &name
		}
		if given["scopes"] {
			u.Scopes = strings.Fields(scopes)
		}
		if given["rate-limit"] {
			if err := checkRate(rate); err != nil {
				return err
			}
			u.RateLimit = &rate
		}
		if u.Name == nil && u.Scopes == nil && u.RateLimit == nil {
			return errors.New("give at least one of --name, --scopes, --rate-limit")
		}
		k, err := a.keys.Update(ctx, id, u)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no key %q", id)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, keyJSON(k))
	case "client delete":
		if id == "" {
			return errors.New("--id is required")
		}
		if err := a.provider.DeleteClient(ctx, id); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no client %q", id)
		} else if err != nil {
			return err
		}
		return printJSON(stdout, map[string]string{"client_id": id, "deleted_at": time.Now().UTC().Format(time.RFC3339)})
	case "jwt-keys show", "jwt-keys stage", "jwt-keys promote", "jwt-keys remove":
		return jwtKeysCommand(ctx, store, args[1], id, stdout)
	}
	return errors.New(adminUsage)
}

// checkRate checks a key's --rate-limit policy ("" is none: the
// organisation's plan).
func checkRate(rate string) error {
	if rate == "" {
		return nil
	}
	if _, err := ratelimit.ParsePolicy(rate); err != nil {
		return fmt.Errorf("--rate-limit: %w", err)
	}
	return nil
}

// findKey finds the stored key that text names; "-" reads it from the
// first line of stdin. The key is never printed back.
func findKey(ctx context.Context, keys *apikey.Manager, text string) (*storage.APIKey, error) {
	if text == "" {
		return nil, errors.New("--key is required (- reads it from stdin)")
	}
	if text == "-" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, fmt.Errorf("--key -: reading the key from stdin: %w", err)
		}
		text = strings.TrimSpace(line)
	}
	k, err := keys.Find(ctx, text)
	switch {
	case errors.Is(err, apikey.ErrMalformed):
		return nil, errors.New("--key is not an API key of this server (its shape, checksum or prefix is wrong)")
	case errors.Is(err, storage.ErrNotFound):
		return nil, errors.New("--key: no such key is stored (it may have been deleted, or belong to another database)")
	}
	return k, err
}

// keyJSON is what the admin commands print of a key: never its hash.
func keyJSON(k *storage.APIKey) map[string]any {
	at := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	state := "active"
	now := time.Now()
	switch {
	case !k.RevokedAt.IsZero() && !now.Before(k.RevokedAt):
		state = "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		state = "expired"
	}
	out := map[string]any{"id": k.ID, "organisation_id": k.OrganisationID, "owner_id": k.OwnerID, "name": k.Name, "display": k.Display,
		"environment": k.Environment, "scopes": k.Scopes, "state": state, "created_at": at(k.CreatedAt), "expires_at": at(k.ExpiresAt),
		"revoked_at": at(k.RevokedAt), "last_used_at": at(k.LastUsedAt), "last_used_ip": k.LastUsedIP, "uses_remaining": nil}
	if k.UsesLimited {
		out["uses_remaining"] = k.UsesRemaining // before any refill due since it was last spent
	}
	return out
}

// jwtKeysCommand shows or changes the JWT signing keys that instances
// started with -jwt share through the database. Instances read the set
// when they start: to rotate, stage a key and restart every instance (all
// now publish it), wait five minutes (verifiers' JWKS caches), promote it
// and restart them again; remove the old key once its tokens have
// expired, and restart once more.
func jwtKeysCommand(ctx context.Context, store *sqlstore.Store, action, id string, stdout io.Writer) error {
	if os.Getenv("GATEHOUSE_JWT_KEYS") != "" {
		return errors.New("GATEHOUSE_JWT_KEYS is set: the servers take their keys from it, not from the database")
	}
	db, dialect := store.DB(), store.Dialect()
	var ks *oauth.KeySet
	var err error
	out := map[string]any{}
	switch action {
	case "show":
		ks, _, err = storedJWTKeys(ctx, db, dialect)
	case "stage":
		ks, err = changeJWTKeys(ctx, db, dialect, func(ks *oauth.KeySet) error {
			kid, err := ks.Stage()
			out["staged"] = kid
			return err
		})
	case "promote", "remove":
		if id == "" {
			return errors.New("--id is required")
		}
		ks, err = changeJWTKeys(ctx, db, dialect, func(ks *oauth.KeySet) error {
			if action == "promote" {
				return ks.Promote(id)
			}
			return ks.Remove(id)
		})
	}
	if err != nil {
		return err
	}
	out["signing"] = ks.SigningKeyID()
	var kids []string
	for _, k := range ks.JWKS().Keys {
		kids = append(kids, k.KeyID)
	}
	out["keys"] = kids
	return printJSON(stdout, out)
}
