// Package apierror writes every error of a Gatehouse API in one JSON
// envelope, the one the seed documents show:
//
//	{"error":{"code":"INVALID_REQUEST","message":"The request parameters are invalid",
//	  "details":{"field":"customer_id","issue":"Customer ID must be a valid UUID"}}}
//
// # Errors
//
// [Error] carries an HTTP status, a stable code, a message and optional
// details. Constructors exist for every status the seeds list
// ([InvalidRequest] 400, [Unauthorized] and [InvalidToken] 401, [Forbidden]
// and [InsufficientScope] 403, [NotFound] 404, [NotAcceptable] 406,
// [Unprocessable] 422, [RateLimited] 429, [Internal] 500) and for 405, 409,
// 413, 415 and 503.
//
// [Write] turns any error into the envelope: an [*Error] as it is, JSON
// decoding errors into a 400 naming the field, an oversized body into a 413,
// and anything else into a 500 whose cause is logged with log/slog and the
// request id, never sent. Only this package writes error bodies; the other
// Gatehouse packages render through it.
//
// 401 and 403 answers carry WWW-Authenticate: Bearer as RFC 6750 §3
// describes: no error code when no credentials were sent,
// error="invalid_token" when they were rejected, and
// error="insufficient_scope" with scope="…" when the scope is too narrow.
//
// # Problem details
//
// A client that sends Accept: application/problem+json (preferring it to
// application/json) gets the same error as RFC 9457 problem details, with
// code and details as extension members.
//
// # Middleware
//
// [RequestID] names every request (X-Request-Id), [Recoverer] turns panics
// into a logged 500, and [Negotiate] answers 406 when the client accepts no
// JSON. [Decoder] decodes JSON bodies strictly (size limit, Content-Type,
// unknown members refused) and [Validation] collects field errors into one
// 422.
package apierror
