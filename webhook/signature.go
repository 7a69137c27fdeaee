package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// GenerateSecret returns a new signing secret: "whsec_" and the base64 of
// 32 random bytes.
func GenerateSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ErrSecret is returned for a secret that is not "whsec_" and the base64
// of 24 to 64 bytes (by NormalizeSecret: nor 24 to 64 characters of text).
var ErrSecret = errors.New("webhook: the secret " + SecretIssue)

// SecretIssue is what is wrong with a secret [NormalizeSecret] refuses.
const SecretIssue = `must be "whsec_" followed by the base64 of 24 to 64 bytes, or 24 to 64 characters of text`

// NormalizeSecret returns the whsec_ form of a secret a subscriber chose:
// a whsec_ secret as it is, or a plain one of 24 to 64 characters of text
// (the seed's "webhook_secret_for_verification") as "whsec_" and the
// base64 of its bytes. Both forms name one HMAC key, so a receiver
// verifies with the whsec_ form (standardwebhooks.NewWebhook) or with its
// plain secret as the raw key (NewWebhookRaw). Anything else is
// [ErrSecret].
func NormalizeSecret(s string) (string, error) {
	key, err := secretKey(s)
	if err != nil || strings.HasPrefix(s, SecretPrefix) {
		return s, err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// secretKey is the HMAC key of a secret in either form NormalizeSecret
// takes, so a receiver may hold the plain secret it chose.
func secretKey(s string) ([]byte, error) {
	if strings.HasPrefix(s, SecretPrefix) {
		return ParseSecret(s)
	}
	if len(s) < 24 || len(s) > 64 || !utf8.ValidString(s) {
		return nil, ErrSecret
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return nil, ErrSecret
		}
	}
	return []byte(s), nil
}

// ParseSecret returns the key bytes of a "whsec_…" secret.
func ParseSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrSecret
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message: one
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per key, space-separated
// (during a rotation both the new and the old secret sign).
func Sign(id string, ts time.Time, body []byte, keys ...[]byte) string {
	out := make([]byte, 0, len(keys)*(len("v1,")+sigLen+1))
	for i, k := range keys {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, mac(k, id, ts.Unix(), body))
	}
	return string(out)
}

// sigLen is the length of a v1 signature in base64.
var sigLen = base64.StdEncoding.EncodedLen(sha256.Size)

// mac returns the HMAC-SHA256 of "id.timestamp.body" under key. The
// prefix is written in one piece, and its buffer takes the sum.
func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	b := make([]byte, 0, max(len(id)+22, sha256.Size)) // id, '.', up to 20 digits, '.'
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	m.Write(b)
	m.Write(body)
	return m.Sum(b[:0])
}

// Verification errors.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp     = errors.New("webhook: webhook-timestamp is not a Unix time")
	ErrTooOld           = errors.New("webhook: the message is older than the tolerance")
	ErrTooNew           = errors.New("webhook: the message is dated in the future beyond the tolerance")
	ErrNoValidSignature = errors.New("webhook: no signature matches")
)

// DefaultTolerance is how far webhook-timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// Verify checks a received message: the three headers are present, the
// timestamp is within tolerance of now (DefaultTolerance when zero), and
// one of the v1 signatures matches one of the secrets (compared in
// constant time). A secret is of the whsec_ form or the plain one a
// subscriber chose ([NormalizeSecret]). It returns one of the errors
// above, naming what failed.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...string) error {
	id, tsRaw, sigs := first(h, canonicalID), first(h, canonicalTimestamp), first(h, canonicalSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	switch at := time.Unix(ts, 0); {
	case now.Sub(at) > tolerance:
		return ErrTooOld
	case at.Sub(now) > tolerance:
		return ErrTooNew
	}
	var buf [64]byte
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return fmt.Errorf("webhook: verify: %w", err)
		}
		// Compared in base64, as sent: Sign writes the canonical
		// encoding, and one with other trailing bits is not ours.
		want := base64.StdEncoding.AppendEncode(buf[:0], mac(key, id, ts, body))
		for sig := range strings.SplitSeq(sigs, " ") {
			v, enc, ok := strings.Cut(sig, ",")
			if ok && v == "v1" && hmac.Equal(want, []byte(enc)) {
				return nil
			}
		}
	}
	return ErrNoValidSignature
}

// Canonical forms of the header names, to read them without
// canonicalising again on every message.
var (
	canonicalID        = textproto.CanonicalMIMEHeaderKey(HeaderID)
	canonicalTimestamp = textproto.CanonicalMIMEHeaderKey(HeaderTimestamp)
	canonicalSignature = textproto.CanonicalMIMEHeaderKey(HeaderSignature)
)

// first returns the first value of h under the canonical key k, as
// h.Get would.
func first(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Receiver is middleware for services that consume webhooks: it verifies
// each request's signature before next sees it, and answers 401 in the
// error envelope, saying what failed, when it does not verify. The body is
// read (up to MaxBytes) and restored for next. Safe for concurrent use.
type Receiver struct {
	// Secrets are accepted in turn (the current and, during a rotation,
	// the previous one), each of the whsec_ form or the plain one the
	// subscriber chose.
	Secrets []string
	// Tolerance bounds the age of a message. Default: 5 minutes.
	Tolerance time.Duration
	// MaxBytes limits the body. Default: 1 MiB.
	MaxBytes int64
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Logger receives the errors answered with a 5xx (a receiver with no
	// usable secret). Default: slog.Default().
	Logger *slog.Logger
}

// Handler wraps next.
func (rc Receiver) Handler(next http.Handler) http.Handler {
	// A receiver without a usable secret is the service's own mistake: a
	// 500 whose cause is logged, not a 401 telling every sender how the
	// secret should look.
	fail := apierror.Writer{Logger: rc.Logger}.Write
	var misconfigured error
	if len(rc.Secrets) == 0 {
		misconfigured = errors.New("webhook: Receiver has no secrets")
	}
	for i, s := range rc.Secrets {
		if _, err := secretKey(s); err != nil {
			misconfigured = fmt.Errorf("webhook: Receiver secret %d: %w", i, err)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if misconfigured != nil {
			fail(w, r, apierror.Internal(misconfigured))
			return
		}
		limit := rc.MaxBytes
		if limit <= 0 {
			limit = 1 << 20
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			fail(w, r, err)
			return
		}
		now := time.Now
		if rc.Now != nil {
			now = rc.Now
		}
		if err := Verify(r.Header, body, now(), rc.Tolerance, rc.Secrets...); err != nil {
			fail(w, r, apierror.New(http.StatusUnauthorized, apierror.CodeUnauthorized, strings.TrimPrefix(err.Error(), "webhook: ")))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
