package oauth

import (
	"maps"
	"time"

	"github.com/ory/fosite"
)

// Session is what Gatehouse keeps with every grant: who the user is, the
// organisation whose data the grant reaches, and when each token expires.
// It implements fosite.Session.
type Session struct {
	Subject      string                         `json:"sub"`
	Organisation string                         `json:"org"`
	Username     string                         `json:"username,omitempty"`
	ClientID     string                         `json:"cid,omitempty"`
	ExpiresAt    map[fosite.TokenType]time.Time `json:"exp,omitempty"`
}

var _ fosite.Session = (*Session)(nil)

// SetExpiresAt implements fosite.Session.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[key] = exp
}

// GetExpiresAt implements fosite.Session.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if s.ExpiresAt == nil {
		return time.Time{}
	}
	return s.ExpiresAt[key]
}

// GetUsername implements fosite.Session.
func (s *Session) GetUsername() string { return s.Username }

// GetSubject implements fosite.Session.
func (s *Session) GetSubject() string { return s.Subject }

// SetSubject is called by fosite's password grant.
func (s *Session) SetSubject(sub string) { s.Subject = sub }

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	return &c
}
