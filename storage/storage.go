package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Adapters return errors for which errors.Is holds with
// one of these, so callers can branch without knowing the adapter.
var (
	// ErrNotFound: no record matches (or, for a conditional update, no
	// record is in the state the update requires). A lookup by text that
	// is not [ValidText] matches nothing and is ErrNotFound too, on every
	// adapter (the conformance suite checks it).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: the record would violate a uniqueness rule (an id, a
	// domain prefix, an email within an organisation, a key hash), or a
	// conditional update found it changed since it was read (a Version,
	// a password hash).
	ErrConflict = errors.New("storage: conflict")
	// ErrLeaseLost: a webhook delivery's lease is no longer held by the
	// caller (it expired and another worker claimed the delivery), so the
	// caller's result is discarded rather than clobbering the new owner's.
	ErrLeaseLost = errors.New("storage: lease lost")
	// ErrUnavailable: the backend cannot be reached or is shutting down
	// (connection refused or reset, the server restarting, the pool
	// exhausted). The call may succeed if retried shortly. It reports
	// Unavailable() true, which apierror answers with a 503 and
	// Retry-After instead of a 500.
	ErrUnavailable error = unavailable{}
)

type unavailable struct{}

// ValidText reports whether s is text every adapter can store and look
// up: valid UTF-8 without U+0000. PostgreSQL's text type refuses both (a
// statement with such a parameter fails, and a lookup by it would be a
// 500 rather than "not found"), so code that takes text from a client
// checks it before it reaches a store.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// TextIssue is what to say of a field whose text is not [ValidText].
const TextIssue = "must be UTF-8 text without the character U+0000"

func (unavailable) Error() string     { return "storage: unavailable" }
func (unavailable) Unavailable() bool { return true }

// Store is everything Gatehouse stores. An adapter implements all of it;
// each package asks only for the interfaces it uses.
type Store interface {
	Organisations
	Users
	Clients
	Tokens
	Consents
	APIKeys
	Subscriptions
	Outbox
}

// Page asks for a slice of a list ordered by creation time, oldest first.
// Limit 0 means the adapter's default of 100.
type Page struct {
	Offset int
	Limit  int
}

// Size returns the limit with its default applied.
func (p Page) Size() int {
	if p.Limit <= 0 {
		return 100
	}
	return p.Limit
}

// NewID returns a new random identifier in UUID version 7 form (48 bits of
// Unix milliseconds, then 74 random bits): unique without coordination,
// and ordered by creation time so that B-tree indexes stay compact.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	ms := uint64(time.Now().UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(b[0:6], ts[2:8])
	b[6] = (b[6] & 0x0f) | 0x70 // version 7
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// ValidID reports whether s has the canonical 36-character UUID form
// (8-4-4-4-12 lowercase or uppercase hex digits).
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Tx is implemented by adapters that can run several calls in one
// transaction. InTx calls fn with a context that carries the transaction;
// every method of the same adapter called with that context joins it. The
// transaction commits when fn returns nil and rolls back otherwise.
type Tx interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// RetryOnConflict runs attempt, a read, a change and a conditional write
// (UpdateAPIKey, UpdateClient, UpdateSubscription), again while it fails
// with ErrConflict because another change came between its read and its
// write, at most 16 times, and returns its last error.
func RetryOnConflict(attempt func() error) error {
	var err error
	for range 16 {
		if err = attempt(); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}
