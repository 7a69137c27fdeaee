package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
)

// ConnectedApp is an application a user has authorized.
type ConnectedApp struct {
	Client *storage.Client
	// Scopes are those the user allowed and asked to remember; empty when
	// the application holds tokens without a remembered consent.
	Scopes []string
	// GrantedAt is when that consent was given; zero without one.
	GrantedAt time.Time
}

// ConnectedApps returns the applications userID has authorized, for a
// "connected applications" page: those holding a live access or refresh
// token of the user, and those whose consent the user asked to remember.
// Remembered consents come first, the most recent first; then the others
// by name. Deleted clients are left out.
func (p *Provider) ConnectedApps(ctx context.Context, userID string) ([]ConnectedApp, error) {
	consents, err := p.store.ListConsents(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("oauth: connected apps: %w", err)
	}
	granted, err := p.store.GrantedClients(ctx, userID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("oauth: connected apps: %w", err)
	}
	var apps []ConnectedApp
	seen := map[string]bool{}
	add := func(clientID string, scopes []string, at time.Time) error {
		if seen[clientID] {
			return nil
		}
		seen[clientID] = true
		c, err := p.store.GetClient(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("oauth: connected apps: %w", err)
		}
		if scopes != nil {
			scopes = p.stillAllowed(scopes, c.Scopes) // what the application may still hold (UpdateClient)
		}
		apps = append(apps, ConnectedApp{Client: c, Scopes: scopes, GrantedAt: at})
		return nil
	}
	for _, c := range consents {
		if err := add(c.ClientID, c.Scopes, c.GrantedAt); err != nil {
			return nil, err
		}
	}
	n := len(apps)
	for _, id := range granted {
		if err := add(id, nil, time.Time{}); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(apps[n:], func(a, b ConnectedApp) int {
		return cmp.Or(cmp.Compare(a.Client.Name, b.Client.Name), cmp.Compare(a.Client.ID, b.Client.ID))
	})
	return apps, nil
}

// Disconnect revokes everything userID granted clientID and returns how
// many tokens it ended: the application's codes, access and refresh
// tokens stop working (at once on this instance, within
// ResourceConfig.CacheTTL on others; a standalone JWTVerifier honours it
// only at expiry), and the remembered consent is forgotten, so the
// consent page is shown again next time.
func (p *Provider) Disconnect(ctx context.Context, userID, clientID string) (int, error) {
	// Twice, as RevokeRefreshToken does: a refresh storing a new pair
	// meanwhile sees the first pass or is swept by the second.
	var n int
	for range 2 {
		ended, err := p.store.DeactivateGrantTokens(ctx, userID, clientID)
		if err != nil {
			return 0, fmt.Errorf("oauth: disconnect: %w", err)
		}
		n += ended
	}
	if err := p.store.DeleteConsent(ctx, userID, clientID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return n, fmt.Errorf("oauth: disconnect: %w", err)
	}
	p.dropGrantsOf(userID, clientID)
	p.broadcast(ctx, topicUserClient, clientID+" "+userID)
	p.log.Info("oauth application disconnected", "user_id", userID, "client_id", clientID, "tokens", n)
	return n, nil
}
