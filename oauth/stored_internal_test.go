package oauth

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storedBefore is a request as the earlier stored form wrote it (the
// session marshalled on its own and kept as json.RawMessage), captured
// from that code for the request TestStoredFormatUnchanged builds.
const storedBefore = `{"id":"r","requested_at":"2026-12-02T17:00:00Z","client_id":"c","requested_scope":["bookings:read"],"granted_scope":["bookings:read"],` +
	`"form":{"grant_type":["password"],"scope":["bookings:read"]},"session":{"sub":"u\u003c1\u003e","org":"o\u0026p","username":"ada@example.com","cid":"c",` +
	`"exp":{"access_token":"2026-12-02T18:00:00Z","refresh_token":"2026-12-03T17:00:00Z"}}}`

// TestStoredFormatUnchanged: the stored form of a request, which holds its
// session inline, writes the very bytes the earlier form did, and decodes
// them into the caller's prototype session, so tokens stored by either
// version read alike.
func TestStoredFormatUnchanged(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	sess := &Session{Subject: "u<1>", Organisation: "o&p", Username: "ada@example.com", ClientID: "c",
		ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: at.Add(time.Hour), fosite.RefreshToken: at.Add(24 * time.Hour)}}
	form := url.Values{"grant_type": {"password"}, "scope": {"bookings:read"}}
	now, err := json.Marshal(stored{ID: "r", RequestedAt: at, ClientID: "c", RequestedScope: []string{"bookings:read"},
		GrantedScope: []string{"bookings:read"}, Form: form, Session: sess})
	require.NoError(t, err)
	assert.Equal(t, storedBefore, string(now))

	got := &Session{}
	st := stored{Session: got}
	require.NoError(t, json.Unmarshal([]byte(storedBefore), &st))
	assert.Equal(t, sess, got, "decoded into the prototype session")
	assert.Equal(t, form, st.Form)
	assert.Equal(t, at, st.RequestedAt)
}
