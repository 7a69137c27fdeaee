package apierror

import (
	"fmt"
	"net/http"
	"strings"
)

// Codes carried in the "code" member of the envelope. They are part of the
// public contract of every API built with Gatehouse: clients branch on them.
const (
	CodeInvalidRequest       = "INVALID_REQUEST"
	CodeUnauthorized         = "UNAUTHORIZED"
	CodeForbidden            = "FORBIDDEN"
	CodeInsufficientScope    = "INSUFFICIENT_SCOPE"
	CodeNotFound             = "NOT_FOUND"
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	CodeNotAcceptable        = "NOT_ACCEPTABLE"
	CodeConflict             = "CONFLICT"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeUnprocessableEntity  = "UNPROCESSABLE_ENTITY"
	CodeRateLimited          = "RATE_LIMITED"
	CodeInternal             = "INTERNAL_ERROR"
	CodeUnavailable          = "SERVICE_UNAVAILABLE"
	// CodeClientClosedRequest: the client went away before the answer
	// (status 499, as nginx logs it); never seen by a client.
	CodeClientClosedRequest = "CLIENT_CLOSED_REQUEST"
)

// Error is an error that is safe to show to the caller of an API. Its fields
// map one to one onto the JSON envelope:
//
//	{"error":{"code":"INVALID_REQUEST","message":"…","details":{…}}}
//
// Status is the HTTP status the envelope is sent with. Details is marshalled
// with encoding/json and may be nil. Header holds extra response headers
// (Retry-After, WWW-Authenticate, Allow …) that [Write] sets before the
// status line.
//
// An Error never carries secrets: everything in it is sent to the client.
// To keep an internal cause for the logs, wrap it with [Error.WithCause]:
// the cause is logged by [Write] for 5xx errors and never sent.
type Error struct {
	Status  int
	Code    string
	Message string
	Details any
	Header  http.Header

	cause error
}

// Error implements the error interface. It returns the code and message,
// never the cause.
func (e *Error) Error() string {
	return "apierror: " + strings.ToLower(e.Code) + ": " + e.Message
}

// Unwrap returns the internal cause set by [Error.WithCause], if any.
func (e *Error) Unwrap() error { return e.cause }

// WithCause returns a copy of e that wraps cause. The cause is never sent to
// the client.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WithDetails returns a copy of e with Details set to d.
func (e *Error) WithDetails(d any) *Error {
	c := *e
	c.Details = d
	return &c
}

// WithHeader returns a copy of e that also sets the response header key to
// value. The receiver's headers are not modified.
func (e *Error) WithHeader(key, value string) *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = make(http.Header, 1)
	}
	c.Header.Set(key, value)
	return &c
}

// StatusClientClosedRequest is the status Write uses when the request's
// context ended and the error came from that: nginx's 499.
const StatusClientClosedRequest = 499

// New returns an Error with the given status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// FieldIssue names one invalid field of a request and what is wrong with it.
// A single FieldIssue is the "details" object of the seed's example:
//
//	{"field":"customer_id","issue":"Customer ID must be a valid UUID"}
type FieldIssue struct {
	Field string `json:"field"`
	Issue string `json:"issue"`
}

// FieldDetails is the "details" object of a 422 that lists several fields.
// The first issue is repeated in Field and Issue, so clients written against
// the single-field form keep working; Errors lists all of them.
type FieldDetails struct {
	Field  string       `json:"field"`
	Issue  string       `json:"issue"`
	Errors []FieldIssue `json:"errors"`
}

// InvalidRequest is a 400 INVALID_REQUEST. When field is not empty, the
// details name it and say what is wrong (issue).
func InvalidRequest(message, field, issue string) *Error {
	e := New(http.StatusBadRequest, CodeInvalidRequest, message)
	if field != "" {
		e.Details = FieldIssue{Field: field, Issue: issue}
	}
	return e
}

// InvalidParam is a 400 INVALID_REQUEST for one invalid parameter, with the
// seed's generic message "The request parameters are invalid".
func InvalidParam(field, issue string) *Error {
	return InvalidRequest("The request parameters are invalid", field, issue)
}

// Unauthorized is a 401 UNAUTHORIZED for a request whose credentials are
// missing or incorrect. When the request carried credentials that were
// rejected, use [InvalidToken] instead so the WWW-Authenticate header says
// why (RFC 6750 §3.1).
func Unauthorized(message string) *Error {
	if message == "" {
		message = "Authentication is required"
	}
	return New(http.StatusUnauthorized, CodeUnauthorized, message).
		WithHeader("WWW-Authenticate", `Bearer realm="api"`)
}

// InvalidToken is a 401 UNAUTHORIZED for a request whose bearer credential
// (token or API key) was rejected: it carries
// WWW-Authenticate: Bearer error="invalid_token".
func InvalidToken(message string) *Error {
	if message == "" {
		message = "The access token is invalid"
	}
	return New(http.StatusUnauthorized, CodeUnauthorized, message).
		WithHeader("WWW-Authenticate", bearerChallenge("invalid_token", message, ""))
}

// Forbidden is a 403 FORBIDDEN: the caller is known but may not do this.
func Forbidden(message string) *Error {
	if message == "" {
		message = "You do not have permission to perform this action"
	}
	return New(http.StatusForbidden, CodeForbidden, message)
}

// ScopeDetails is the "details" object of a 403 INSUFFICIENT_SCOPE.
type ScopeDetails struct {
	Required []string `json:"required"`
	Missing  []string `json:"missing"`
}

// InsufficientScope is a 403 INSUFFICIENT_SCOPE naming the scopes the request
// needs (required) and those the caller lacks (missing). It carries
// WWW-Authenticate: Bearer error="insufficient_scope", scope="…"
// (RFC 6750 §3.1).
func InsufficientScope(required, missing []string) *Error {
	msg := "The credential lacks the scope required for this request: " + strings.Join(missing, ", ")
	return New(http.StatusForbidden, CodeInsufficientScope, msg).
		WithDetails(ScopeDetails{Required: required, Missing: missing}).
		WithHeader("WWW-Authenticate", bearerChallenge("insufficient_scope", "", strings.Join(required, " ")))
}

// NotFound is a 404 NOT_FOUND. what names the resource ("customer"); an
// empty what gives a generic message.
func NotFound(what string) *Error {
	if what == "" {
		return New(http.StatusNotFound, CodeNotFound, "The requested resource does not exist")
	}
	return New(http.StatusNotFound, CodeNotFound, "The requested "+what+" does not exist")
}

// MethodNotAllowed is a 405 METHOD_NOT_ALLOWED with an Allow header listing
// the methods the resource supports.
func MethodNotAllowed(allowed ...string) *Error {
	return New(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "The method is not allowed for this resource").
		WithHeader("Allow", strings.Join(allowed, ", "))
}

// NotAcceptable is a 406 NOT_ACCEPTABLE: the Accept header excludes every
// format the API can produce.
func NotAcceptable() *Error {
	return New(http.StatusNotAcceptable, CodeNotAcceptable, "The requested format is not available; this API produces application/json")
}

// Conflict is a 409 CONFLICT.
func Conflict(message string) *Error {
	return New(http.StatusConflict, CodeConflict, message)
}

// PayloadTooLarge is a 413 PAYLOAD_TOO_LARGE for a body over limit bytes.
func PayloadTooLarge(limit int64) *Error {
	return New(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
		fmt.Sprintf("The request body is larger than %d bytes", limit))
}

// UnsupportedMediaType is a 415 UNSUPPORTED_MEDIA_TYPE; want is the media
// type the endpoint accepts.
func UnsupportedMediaType(want string) *Error {
	return New(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
		"The request body must be sent as "+want).
		WithDetails(FieldIssue{Field: "Content-Type", Issue: "must be " + want}).
		WithHeader("Accept-Post", want)
}

// Unprocessable is a 422 UNPROCESSABLE_ENTITY listing every invalid field.
// To collect issues and get nil when there are none, use [Validation].
func Unprocessable(issues ...FieldIssue) *Error {
	if len(issues) == 0 {
		return New(http.StatusUnprocessableEntity, CodeUnprocessableEntity, "The request contains invalid fields")
	}
	return New(http.StatusUnprocessableEntity, CodeUnprocessableEntity, "The request contains invalid fields").
		WithDetails(FieldDetails{Field: issues[0].Field, Issue: issues[0].Issue, Errors: issues})
}

// RateLimited is a 429 RATE_LIMITED. retryAfter is whole seconds until the
// request may be retried and is sent as Retry-After; details says which
// limit was hit and may be nil.
func RateLimited(retryAfter int64, details any) *Error {
	if retryAfter < 1 {
		retryAfter = 1
	}
	return New(http.StatusTooManyRequests, CodeRateLimited, "Rate limit exceeded; retry after the time in Retry-After").
		WithDetails(details).
		WithHeader("Retry-After", fmt.Sprint(retryAfter))
}

// Internal is a 500 INTERNAL_ERROR that wraps cause for the logs. Its message
// never says more than that something went wrong.
func Internal(cause error) *Error {
	return New(http.StatusInternalServerError, CodeInternal, "Something went wrong on our side; it has been logged").WithCause(cause)
}

// Unavailable is a 503 SERVICE_UNAVAILABLE for a dependency that is down
// (database, rate-limit store). It wraps cause for the logs.
func Unavailable(cause error) *Error {
	return New(http.StatusServiceUnavailable, CodeUnavailable, "The service is temporarily unavailable; retry shortly").
		WithCause(cause).
		WithHeader("Retry-After", "1")
}

// bearerChallenge renders an RFC 6750 §3 WWW-Authenticate value.
func bearerChallenge(code, description, scope string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="api", error="`)
	b.WriteString(code)
	b.WriteByte('"')
	if description != "" {
		b.WriteString(`, error_description="`)
		b.WriteString(quoteSafe(description))
		b.WriteByte('"')
	}
	if scope != "" {
		b.WriteString(`, scope="`)
		b.WriteString(quoteSafe(scope))
		b.WriteByte('"')
	}
	return b.String()
}

// quoteSafe keeps only the characters RFC 6750 allows inside
// error_description and scope (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
