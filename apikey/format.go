package apikey

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/big"
	"strings"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/digestcache"
)

// Key format: <prefix>_<env>_<random><checksum>
//
//   - prefix: [a-z][a-z0-9]{1,15}, configurable ("gate" by default);
//   - env: "live" or "test";
//   - random: 24 bytes (192 bits) from crypto/rand in base62, 33 characters;
//   - checksum: CRC32 (IEEE) of everything before it, base62, 6 characters.
//
// The checksum lets a mistyped or truncated key be refused without a
// storage lookup, and lets secret scanners recognise our keys, as GitHub's
// tokens do. It is not a security measure: the 192 random bits are.
const (
	randomBytes   = 24
	randomChars   = 33 // ceil(192 / log2(62))
	checksumChars = 6  // ceil(32 / log2(62))
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// isBase62 is a read-only lookup table of the base62 alphabet.
var isBase62 = func() (t [256]bool) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = true
	}
	return t
}()

// ErrMalformed is wrapped by [Parse] errors: the string is not one of our
// keys (wrong shape, or a checksum that does not match).
var ErrMalformed = errors.New("apikey: malformed key")

// Secret is an API key in plain text. It redacts itself in fmt and slog
// output, so it cannot be logged by accident; call [Secret.Reveal] to get
// the string (once, to show it to its owner).
type Secret string

// Reveal returns the key itself.
func (s Secret) Reveal() string { return string(s) }

// String returns the redacted display form.
func (s Secret) String() string { return Display(string(s)) }

// GoString redacts too, for %#v.
func (s Secret) GoString() string { return Display(string(s)) }

// LogValue implements slog.LogValuer with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Display(string(s))) }

// Parsed is a key that passed the format and checksum checks.
type Parsed struct {
	Prefix      string
	Environment gatehouse.Environment
}

func validPrefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// generate makes a new key for prefix and env.
func generate(prefix string, env gatehouse.Environment) Secret {
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	body := prefix + "_" + string(env) + "_" + encode62(new(big.Int).SetBytes(b[:]), randomChars)
	return Secret(body + encode62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(body)))), checksumChars))
}

func encode62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// decodeChecksum reads 6 base62 characters; ok is false for other bytes.
func decodeChecksum(s string) (uint64, bool) {
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'A' && c <= 'Z':
			v = c - 'A' + 10
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 36
		default:
			return 0, false
		}
		n = n*62 + uint64(v)
	}
	return n, true
}

// Parse checks that key has our format and a valid checksum, without any
// storage lookup. It does not allocate for valid keys.
func Parse(key string) (Parsed, error) {
	// prefix _ env _ random+checksum
	i := strings.IndexByte(key, '_')
	if i < 0 || !validPrefix(key[:i]) {
		return Parsed{}, fmt.Errorf("%w: no prefix", ErrMalformed)
	}
	rest := key[i+1:]
	var env gatehouse.Environment
	switch {
	case strings.HasPrefix(rest, "live_"):
		env = gatehouse.Live
	case strings.HasPrefix(rest, "test_"):
		env = gatehouse.Test
	default:
		return Parsed{}, fmt.Errorf("%w: environment must be live or test", ErrMalformed)
	}
	tail := rest[5:]
	if len(tail) != randomChars+checksumChars {
		return Parsed{}, fmt.Errorf("%w: wrong length", ErrMalformed)
	}
	for j := 0; j < randomChars; j++ {
		if !isBase62[tail[j]] {
			return Parsed{}, fmt.Errorf("%w: invalid character", ErrMalformed)
		}
	}
	sum, ok := decodeChecksum(tail[randomChars:])
	if !ok || sum != uint64(crcString(key[:len(key)-checksumChars])) {
		return Parsed{}, fmt.Errorf("%w: checksum mismatch", ErrMalformed)
	}
	return Parsed{Prefix: key[:i], Environment: env}, nil
}

// crcString is crc32.ChecksumIEEE of s without converting s to []byte
// (which would allocate on the verification hot path).
func crcString(s string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = tab[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

// Display returns the redacted form of a key for dashboards and logs:
// "gate_live_…wxyz" (prefix, environment and the last four characters). For
// a string that is not a key it returns "…" and the last four characters
// at most.
func Display(key string) string {
	last := key
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	p, err := Parse(key)
	if err != nil {
		if len(key) < 12 {
			return "…"
		}
		return "…" + last
	}
	return p.Prefix + "_" + string(p.Environment) + "_…" + last
}

// hasher hashes keys for storage: SHA-256, or HMAC-SHA-256 with a pepper.
type hasher struct{ pepper []byte }

// digest is the binary hash of a key; the cache is keyed by it.
type digest [sha256.Size]byte

// hex returns the form stored in storage.APIKey.Hash.
func (d digest) hex() string { return hex.EncodeToString(d[:]) }

// sum hashes key. It does not allocate for unpeppered keys.
func (h hasher) sum(key string) digest {
	if len(h.pepper) > 0 {
		m := hmac.New(sha256.New, h.pepper)
		m.Write([]byte(key))
		var d digest
		m.Sum(d[:0])
		return d
	}
	return digest(digestcache.Sum(key))
}

// hash returns the hex hash of key, as stored.
func (h hasher) hash(key string) string { return h.sum(key).hex() }

// IDFor derives a key's public id from the key: "key_" and 20 hex digits of
// its SHA-256. It is stable, unique in practice (80 bits), and reveals
// nothing usable about the key.
func IDFor(key string) string {
	sum := sha256.Sum256([]byte("gatehouse-key-id:" + key))
	return "key_" + hex.EncodeToString(sum[:10])
}
