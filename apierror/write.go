package apierror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Media types written by this package.
const (
	ContentTypeJSON    = "application/json; charset=utf-8"
	ContentTypeProblem = "application/problem+json"
)

// envelope is the wire form of an Error: {"error":{…}}.
type envelope struct {
	Error body `json:"error"`
}

type body struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Details   any    `json:"details,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// problem is the RFC 9457 form of an Error, with the envelope's code and
// details as extension members.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance,omitempty"`
	Code      string `json:"code"`
	Details   any    `json:"details,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Writer renders errors. The zero value is ready to use and logs through
// slog.Default(); it is safe for concurrent use.
type Writer struct {
	// Logger receives one record for every error of status 500 or more,
	// with its internal cause and the request id. Default: slog.Default().
	// Errors below 500 are the caller's and are not logged here.
	Logger *slog.Logger
}

// Write renders err as the JSON envelope with [Writer]'s zero value. See
// [Writer.Write].
func Write(w http.ResponseWriter, r *http.Request, err error) {
	Writer{}.Write(w, r, err)
}

func (wr Writer) logger() *slog.Logger {
	if wr.Logger != nil {
		return wr.Logger
	}
	return slog.Default()
}

// causeOr is what a log line names as the cause of e: the internal cause
// set by WithCause, or else err, the error Write was given.
func (e *Error) causeOr(err error) error {
	if e.cause != nil {
		return e.cause
	}
	return err
}

// Write turns any error into the envelope and writes it:
//
//   - an [*Error] (found with errors.As) is written as it is;
//   - a JSON syntax or type error from a request body becomes a 400 naming
//     the field;
//   - an *http.MaxBytesError becomes a 413;
//   - anything else becomes a 500 INTERNAL_ERROR whose cause is logged with
//     the request id and never sent;
//   - but when the request's context has already ended (the client went
//     away) and the error is that cancellation or any 5xx, the answer is
//     499 CLIENT_CLOSED_REQUEST, logged at Info with its cause;
//   - and when it ended because a deadline the server set passed (a
//     per-request timeout over a backend that hangs), the answer is 503
//     SERVICE_UNAVAILABLE with Retry-After, logged as an error: the
//     client is still there, and the failure is ours.
//
// When the request's Accept header prefers application/problem+json the
// error is written as RFC 9457 problem details instead, with the same code
// and details as extension members.
func (wr Writer) Write(w http.ResponseWriter, r *http.Request, err error) {
	e := From(err)
	reqID := ""
	if r != nil {
		reqID = RequestIDFromContext(r.Context())
		cerr := r.Context().Err()
		if cerr != nil && errors.Is(cerr, context.DeadlineExceeded) && (errors.Is(err, cerr) || e.Status >= 500) {
			// A deadline is the server's (a client that gives up cancels
			// instead): the request waited too long on something of ours.
			e = Unavailable(err)
		} else if cerr != nil && (errors.Is(err, cerr) || e.Status >= 500) {
			// The client went away (or the server is shutting down) and
			// the work was abandoned because of it: nobody reads this
			// answer and nothing failed on our side, so it is not logged
			// as an error. 499 keeps it apart from 5xx in access logs and
			// metrics. A failure that does not name the cancellation
			// (database/sql answers "bad connection" when a cancelled
			// query took its connection down) is most likely the same
			// thing; it is logged with its cause, at Info, since no
			// client is left to see it and a real outage shows in the
			// requests whose clients are still there.
			attrs := []any{"request_id", reqID, "method", r.Method, "path", r.URL.Path, "reason", cerr.Error()}
			if !errors.Is(err, cerr) {
				attrs = append(attrs, "err", e.causeOr(err))
			}
			e = New(StatusClientClosedRequest, CodeClientClosedRequest, "The client closed the request")
			wr.logger().Info("request abandoned", attrs...)
		}
	}
	if e.Status >= 500 {
		attrs := []any{"status", e.Status, "code", e.Code, "request_id", reqID}
		if r != nil {
			attrs = append(attrs, "method", r.Method, "path", r.URL.Path)
		}
		wr.logger().Error("request failed", append(attrs, "err", e.causeOr(err))...)
	}
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	var payload any
	if r != nil && PrefersProblem(r) {
		h.Set("Content-Type", ContentTypeProblem)
		payload = problem{
			Type:      "about:blank",
			Title:     http.StatusText(e.Status),
			Status:    e.Status,
			Detail:    e.Message,
			Code:      e.Code,
			Details:   e.Details,
			RequestID: reqID,
		}
	} else {
		h.Set("Content-Type", ContentTypeJSON)
		payload = envelope{Error: body{Code: e.Code, Message: e.Message, Details: e.Details, RequestID: reqID}}
	}
	buf, merr := marshal(payload)
	if merr != nil {
		// Details that cannot be marshalled are our bug: never fail the
		// response because of them.
		buf, _ = marshal(envelope{Error: body{Code: e.Code, Message: e.Message, RequestID: reqID}})
	}
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(e.Status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(buf)
	}
}

// marshal encodes v as one line of JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// From converts any error into an [*Error] with the rules of [Writer.Write].
// It never returns nil: a nil err becomes a 500.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var down interface{ Unavailable() bool }
	if errors.As(err, &down) && down.Unavailable() {
		return Unavailable(err)
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return PayloadTooLarge(maxErr.Limit)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return InvalidRequest("The request body is not valid JSON", "body",
			"syntax error at byte "+strconv.FormatInt(syn.Offset, 10))
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return InvalidRequest("The request body has a field of the wrong type", field, typeIssue(typ))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return InvalidRequest("The request body is not valid JSON", "body", "unexpected end of input")
	}
	if err == nil {
		err = errors.New("apierror: Write called with a nil error")
	}
	return Internal(err)
}

// typeIssue says what is wrong with a value of the wrong type. A number
// where one is wanted fails only by its size or its fraction, and says so
// rather than "must be a number, not number 1e400".
func typeIssue(typ *json.UnmarshalTypeError) string {
	k := typ.Type.Kind().String()
	if lit, ok := strings.CutPrefix(typ.Value, "number "); ok && jsonKind(k) == "a number" {
		if !strings.HasPrefix(k, "float") && strings.ContainsAny(lit, ".eE") {
			return "must be a whole number, not " + lit
		}
		return "is out of range: " + lit
	}
	return "must be " + jsonKind(k) + ", not " + typ.Value
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	case k == "map", k == "struct", k == "ptr":
		return "an object"
	}
	return "of another type"
}

// PrefersProblem reports whether the request's Accept header asks for
// application/problem+json at least as strongly as for application/json.
func PrefersProblem(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return false
	}
	problemQ, jsonQ := -1.0, -1.0
	eachMediaRange(accept, func(mt string, q float64) {
		switch mt {
		case "application/problem+json":
			problemQ = max(problemQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	})
	return problemQ > 0 && problemQ >= jsonQ
}

// AcceptsJSON reports whether a response of type application/json (or
// application/problem+json) is acceptable under the request's Accept
// header. A missing or empty Accept header accepts anything.
func AcceptsJSON(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	seen := false
	ok := false
	// The most specific matching range decides (RFC 9110 §12.5.1).
	best := -1
	eachMediaRange(accept, func(mt string, q float64) {
		seen = true
		spec := -1
		switch mt {
		case "application/json", "application/problem+json":
			spec = 2
		case "application/*":
			spec = 1
		case "*/*":
			spec = 0
		}
		if spec > best {
			best = spec
			ok = q > 0
		} else if spec == best && spec >= 0 && q > 0 {
			ok = true
		}
	})
	if !seen {
		return true
	}
	return ok
}

// eachMediaRange calls fn for each media range of the Accept header values
// with its quality. Malformed ranges are skipped.
func eachMediaRange(values []string, fn func(mediaType string, q float64)) {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(qs, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			fn(mt, q)
		}
	}
}
