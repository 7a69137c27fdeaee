package apierror

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
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
	if dec.More() {
		return InvalidRequest("The request body is not valid JSON", "body", "unexpected data after the JSON value")
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
