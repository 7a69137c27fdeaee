package apierror

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBodyBytes is the body size limit of [DecodeJSON]: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Validator is implemented by request bodies that check themselves after
// decoding. Validate returns nil or an error, typically the result of
// [Validation.Err], which [DecodeJSON] returns as it is.
type Validator interface {
	Validate() error
}

// Decoder decodes JSON request bodies strictly. The zero value is ready to
// use with a 1 MiB limit; it is safe for concurrent use.
type Decoder struct {
	// MaxBytes limits the body. Default: DefaultMaxBodyBytes.
	MaxBytes int64
	// AllowUnknownFields accepts members that dst does not declare. By
	// default they are a 422 naming the member, so a client that tries to
	// set a field it may not (id, created_at …) learns so at once.
	AllowUnknownFields bool
}

// DecodeJSON decodes r's body into dst with the zero [Decoder].
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return Decoder{}.Decode(w, r, dst)
}

// Decode reads r's body as one JSON value into dst, then calls dst's
// Validate method if it has one. Every failure is an [*Error]:
//
//   - a Content-Type other than application/json (or +json): 415;
//   - a body over the limit: 413;
//   - an empty body, invalid JSON, trailing data: 400 naming "body";
//   - a value of the wrong type: 400 naming the field;
//   - an unknown member: 422 naming it;
//   - a Validate error: as Validate returned it (use [Validation]).
//
// w may be nil; when given, http.MaxBytesReader uses it to close the
// connection after an oversized body.
func (d Decoder) Decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		return UnsupportedMediaType("application/json")
	}
	limit := d.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	// Read the whole body first: a body over the limit is a 413 even when
	// its first value is complete JSON.
	buf, err := io.ReadAll(body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return PayloadTooLarge(limit)
		}
		return InvalidRequest("The request body could not be read", "body", "read failed").WithCause(err)
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return InvalidRequest("The request body is empty", "body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	if !d.AllowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		if field, ok := unknownField(err); ok {
			return Unprocessable(FieldIssue{Field: field, Issue: "is not a field of this resource or may not be set"})
		}
		return From(err)
	}
	// Only whitespace may follow the value. (dec.More is false before a
	// stray "}" or "]", so it would let "{} }" through.)
	if len(bytes.TrimSpace(buf[dec.InputOffset():])) > 0 {
		return InvalidRequest("The request body is not valid JSON", "body", "unexpected data after the JSON value")
	}
	// encoding/json turns bytes that are not UTF-8 and unpaired surrogate
	// escapes into U+FFFD without a word, and keeps \u0000, which
	// PostgreSQL's text cannot hold: refuse all three, naming the member.
	if field, issue := textIssue(buf); issue != "" {
		return InvalidRequest("The request body contains text that is not allowed", field, issue)
	}
	if v, ok := dst.(Validator); ok {
		return v.Validate()
	}
	return nil
}

func isJSONContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// textIssue scans buf, a JSON text that decoded without error, for a
// string (a value or a member name) that would not round-trip: bytes that
// are not UTF-8, the escape \u0000, or a UTF-16 surrogate escape without
// its pair. It returns the dotted path of members that holds the first
// ("body" at the top level) and what is wrong, or "" for the issue.
func textIssue(buf []byte) (field, issue string) {
	var path []string // one entry per open object or array; "" in arrays
	for i := 0; i < len(buf); i++ {
		switch buf[i] {
		case '{', '[':
			path = append(path, "")
		case '}', ']':
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		case '"':
			start := i + 1
			end, issue := scanString(buf, start)
			i = end
			isKey := len(path) > 0 && nextByte(buf, end+1) == ':'
			if isKey {
				name := string(buf[start:end])
				if bytes.IndexByte(buf[start:end], '\\') >= 0 {
					_ = json.Unmarshal(buf[start-1:end+1], &name) // it decoded once already
				}
				path[len(path)-1] = name
			}
			if issue != "" {
				return memberPath(path), issue
			}
		}
	}
	return "", ""
}

// scanString returns the index of the quote that closes the string whose
// contents start at buf[i], and the first issue within it.
func scanString(buf []byte, i int) (end int, issue string) {
	for ; i < len(buf); i++ {
		c := buf[i]
		switch {
		case c == '"':
			return i, issue
		case c == '\\':
			i++
			if i >= len(buf) || buf[i] != 'u' || i+4 >= len(buf) {
				continue
			}
			r := hex4(buf[i+1 : i+5])
			switch {
			case r == 0 && issue == "":
				issue = `must not contain the character U+0000`
			case r >= 0xd800 && r < 0xe000:
				// A high surrogate needs a low one right after it.
				if j := i + 5; r < 0xdc00 && j+5 < len(buf) && buf[j] == '\\' && buf[j+1] == 'u' {
					if lo := hex4(buf[j+2 : j+6]); lo >= 0xdc00 && lo < 0xe000 {
						i = j + 5
						continue
					}
				}
				if issue == "" {
					issue = "contains an unpaired UTF-16 surrogate escape (\\u" + string(buf[i+1:i+5]) + ")"
				}
			}
			i += 4
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(buf[i:])
			if r == utf8.RuneError && size == 1 && issue == "" {
				issue = "is not valid UTF-8"
			}
			i += size - 1
		}
	}
	return i, issue
}

// hex4 is the value of four hex digits (valid: the JSON has decoded).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// nextByte is the first byte at or after i that is not JSON whitespace.
func nextByte(buf []byte, i int) byte {
	for ; i < len(buf); i++ {
		switch buf[i] {
		case ' ', '\t', '\n', '\r':
		default:
			return buf[i]
		}
	}
	return 0
}

// memberPath joins the member names of path with dots, leaving out the
// levels of arrays; "body" when there are none.
func memberPath(path []string) string {
	var names []string
	for _, p := range path {
		if p != "" {
			names = append(names, p)
		}
	}
	if len(names) == 0 {
		return "body"
	}
	return strings.Join(names, ".")
}

// unknownField recognises encoding/json's error for DisallowUnknownFields,
// `json: unknown field "name"`, which has no type of its own.
func unknownField(err error) (string, bool) {
	const prefix = `json: unknown field "`
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, `"`) {
		return "", false
	}
	return msg[len(prefix) : len(msg)-1], true
}

// Validation collects field errors so a handler reports all of them in one
// 422. The zero value is ready to use; it is not safe for concurrent use.
//
//	var v apierror.Validation
//	v.Check(body.Email != "", "email", "is required")
//	v.Check(len(body.Name) <= 200, "name", "must be at most 200 characters")
//	return v.Err()
type Validation struct {
	issues []FieldIssue
}

// Check records issue for field when ok is false, and returns ok.
func (v *Validation) Check(ok bool, field, issue string) bool {
	if !ok {
		v.Add(field, issue)
	}
	return ok
}

// Add records issue for field.
func (v *Validation) Add(field, issue string) {
	v.issues = append(v.issues, FieldIssue{Field: field, Issue: issue})
}

// Issues returns the recorded issues.
func (v *Validation) Issues() []FieldIssue { return v.issues }

// Err returns nil when nothing was recorded, and otherwise a 422
// UNPROCESSABLE_ENTITY listing every issue. Its result is a plain error so
// that a nil *Error never hides inside a non-nil interface.
func (v *Validation) Err() error {
	if len(v.issues) == 0 {
		return nil
	}
	return Unprocessable(v.issues...)
}
