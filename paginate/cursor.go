package paginate

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// Position is a keyset position: the last row of a page in (created_at,
// id) order.
type Position struct {
	CreatedAt time.Time
	ID        string
}

// Cursors encodes and decodes cursors. A cursor is the position, in
// base64url, followed by an HMAC-SHA-256 (truncated to 128 bits) over the
// position and a binding — a canonical string of the query's filters and
// sort — so a tampered cursor, or one from another query or another
// server key, is refused. It is safe for concurrent use.
type Cursors struct {
	key []byte
}

// NewCursors returns a codec keyed with key (at least 32 bytes).
func NewCursors(key []byte) (*Cursors, error) {
	if len(key) < 32 {
		return nil, errors.New("paginate: the cursor key must be at least 32 bytes")
	}
	return &Cursors{key: append([]byte(nil), key...)}, nil
}

// maxCursor bounds the length of a cursor accepted for decoding.
const maxCursor = 512

func (c *Cursors) mac(payload []byte, binding string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(payload)
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return m.Sum(nil)[:16]
}

// Encode returns the cursor for pos under binding.
func (c *Cursors) Encode(pos Position, binding string) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(pos.CreatedAt.UnixMicro()))
	payload = append(payload, pos.ID...)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(c.mac(payload, binding))
}

// Decode checks and decodes a cursor made by Encode with the same binding.
// Every failure is a 400 INVALID_REQUEST naming the "cursor" parameter.
func (c *Cursors) Decode(cursor, binding string) (Position, error) {
	bad := apierror.InvalidParam("cursor", "is not a valid cursor for this query")
	if cursor == "" || len(cursor) > maxCursor {
		return Position{}, bad
	}
	for i := 0; i < len(cursor); i++ {
		// Only the base64url alphabet and the separator: the decoder would
		// otherwise skip \r and \n and accept another spelling.
		c := cursor[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return Position{}, bad
		}
	}
	enc, sig, ok := strings.Cut(cursor, ".")
	if !ok {
		return Position{}, bad
	}
	// Strict: one spelling per cursor (the lenient decoder ignores the
	// unused low bits of the last character).
	payload, err1 := base64.RawURLEncoding.Strict().DecodeString(enc)
	mac, err2 := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) < 8 || subtle.ConstantTimeCompare(mac, c.mac(payload, binding)) != 1 {
		return Position{}, bad
	}
	return Position{CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(payload))).UTC(), ID: string(payload[8:])}, nil
}

// Binding returns a canonical string of r's query parameters other than
// the pagination ones (cursor, limit, per_page, offset, page): sorted by
// name, so the same filters in any order give the same binding.
func Binding(r *http.Request, extra ...string) string {
	q := r.URL.Query()
	for _, k := range []string{"cursor", "limit", "per_page", "offset", "page"} {
		q.Del(k)
	}
	return q.Encode() + "|" + strings.Join(extra, "|")
}

// FromCursorRequest reads the cursor (if any) and limit of r. With no
// cursor parameter the position is nil: start from the beginning.
func (c *Cursors) FromCursorRequest(r *http.Request, o Options, binding string) (*Position, Params, error) {
	p, err := FromRequest(r, o)
	if err != nil {
		return nil, Params{}, err
	}
	if p.Offset != 0 {
		return nil, Params{}, apierror.InvalidParam("offset", "cannot be combined with cursor pagination")
	}
	vals := r.URL.Query()["cursor"]
	switch len(vals) {
	case 0:
		return nil, p, nil
	case 1:
		pos, err := c.Decode(vals[0], binding)
		if err != nil {
			return nil, Params{}, err
		}
		return &pos, p, nil
	}
	return nil, Params{}, apierror.InvalidParam("cursor", "give it once")
}

// SetNextLink writes Link: <…cursor=…>; rel="next" when there is a next
// page (last is the position of the last row served), keeping every
// other query parameter.
func (c *Cursors) SetNextLink(w http.ResponseWriter, r *http.Request, last *Position, binding string) {
	if last == nil {
		return
	}
	q := r.URL.Query()
	q.Set("cursor", c.Encode(*last, binding))
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

// Keyset returns the SQL that continues after pos in (created_at, id)
// order — " AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?"
// (or < and DESC when desc) — with placeholders numbered from next, and
// its arguments. Columns are named createdCol and idCol; with pos nil the
// condition is left out. The caller writes "WHERE <its filters>" before it
// (use "WHERE TRUE" when it has none). Both PostgreSQL and SQLite compare
// row values; createdCol must hold what pos.CreatedAt becomes through
// toDB (for example Unix microseconds).
func Keyset(ph Placeholder, next int, createdCol, idCol string, pos *Position, limit int, desc bool, toDB func(time.Time) any) (string, []any) {
	var b strings.Builder
	var args []any
	op, dir := ">", ""
	if desc {
		op, dir = "<", " DESC"
	}
	if pos != nil {
		b.WriteString(" AND (" + createdCol + ", " + idCol + ") " + op + " (" + ph.arg(next) + ", " + ph.arg(next+1) + ")")
		args = append(args, toDB(pos.CreatedAt), pos.ID)
		next += 2
	}
	b.WriteString(" ORDER BY " + createdCol + dir + ", " + idCol + dir + " LIMIT " + ph.limitArg(next))
	args = append(args, limit)
	return b.String(), args
}
