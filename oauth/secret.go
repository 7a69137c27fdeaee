package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// GenerateSecret returns a new client secret: 256 random bits in unpadded
// base64url, so only [A-Za-z0-9_-] (safe in HTTP Basic credentials, which
// are URL-decoded per RFC 6749 §2.3.1).
func GenerateSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SecretHasher hashes client secrets. Generated secrets carry 256 random
// bits, so a fast keyed hash is as safe as a slow one and costs well under
// a microsecond instead of bcrypt's tens of milliseconds per token request.
// Hashes are "sha256$<hex>" (HMAC-SHA-256 under Pepper when set); bcrypt
// hashes ("$2a$…", imported from elsewhere) still verify. Comparisons are
// constant-time. It implements fosite.Hasher.
type SecretHasher struct {
	Pepper []byte
}

const sha256Prefix = "sha256$"

func (h SecretHasher) sum(secret []byte) string {
	var d []byte
	if len(h.Pepper) > 0 {
		m := hmac.New(sha256.New, h.Pepper)
		m.Write(secret)
		d = m.Sum(nil)
	} else {
		s := sha256.Sum256(secret)
		d = s[:]
	}
	return sha256Prefix + hex.EncodeToString(d)
}

// Hash implements fosite.Hasher.
func (h SecretHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	return []byte(h.sum(secret)), nil
}

// errSecretMismatch is the single error for every failed comparison.
var errSecretMismatch = errors.New("oauth: client secret does not match")

// Compare implements fosite.Hasher.
func (h SecretHasher) Compare(_ context.Context, hash, secret []byte) error {
	switch {
	case strings.HasPrefix(string(hash), sha256Prefix):
		if subtle.ConstantTimeCompare(hash, []byte(h.sum(secret))) != 1 {
			return errSecretMismatch
		}
		return nil
	case strings.HasPrefix(string(hash), "$2"):
		if bcrypt.CompareHashAndPassword(hash, secret) != nil {
			return errSecretMismatch
		}
		return nil
	}
	return errSecretMismatch
}

// PasswordParams are the argon2id parameters for user passwords.
type PasswordParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultPasswordParams follow OWASP's argon2id recommendation (19 MiB,
// two passes, one lane).
var DefaultPasswordParams = PasswordParams{Time: 2, Memory: 19 * 1024, Threads: 1}

// HashPassword hashes a user password with argon2id, in the PHC string
// form $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func HashPassword(password string, p PasswordParams) (string, error) {
	if password == "" {
		return "", errors.New("oauth: empty password")
	}
	p = p.effective()
	var salt [16]byte
	_, _ = rand.Read(salt[:])
	key := argon2.IDKey([]byte(password), salt[:], p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key)), nil
}

// effective is p as HashPassword applies it: the zero value is
// DefaultPasswordParams.
func (p PasswordParams) effective() PasswordParams {
	if p.Time == 0 || p.Memory == 0 || p.Threads == 0 {
		return DefaultPasswordParams
	}
	return p
}

// weakerThan reports whether a hash made with p costs less to guess than
// one made with q: less memory or fewer passes.
func (p PasswordParams) weakerThan(q PasswordParams) bool {
	return p.Memory < q.Memory || p.Time < q.Time
}

// hashParams returns the parameters an argon2id hash was made with.
func hashParams(hash string) (PasswordParams, bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return PasswordParams{}, false
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return PasswordParams{}, false
	}
	return p, true
}

// CheckPassword reports whether password matches a password hash:
// argon2id as HashPassword makes it, or bcrypt ($2a$, $2b$ and $2y$, of
// cost at most MaxBcryptCost), as users imported from another system
// carry; comparisons are constant-time. bcrypt reads only a password's
// first 72 bytes, as the system that made the hash did. The provider
// replaces a bcrypt hash by an argon2id one at the user's next sign-in.
func CheckPassword(hash, password string) bool {
	if isBcrypt(hash) {
		cost, err := bcrypt.Cost([]byte(hash))
		return err == nil && cost <= MaxBcryptCost && bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return checkArgon2id(hash, password)
}

// MaxBcryptCost bounds the bcrypt hashes CheckPassword verifies: each
// step doubles the work, and cost 16 is about four seconds of a core.
const MaxBcryptCost = 16

// isBcrypt reports whether hash is in one of bcrypt's modular forms.
func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// checkArgon2id reports whether password matches an argon2id hash.
func checkArgon2id(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	hp, ok := hashParams(hash)
	if !ok || hp.Memory == 0 || hp.Time == 0 || hp.Threads == 0 || hp.Memory > 1<<22 || hp.Time > 64 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, hp.Time, hp.Memory, hp.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
