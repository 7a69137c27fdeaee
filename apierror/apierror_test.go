package apierror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apierror"
)

type wire struct {
	Error struct {
		Code      string          `json:"code"`
		Message   string          `json:"message"`
		Details   json.RawMessage `json:"details"`
		RequestID string          `json:"request_id"`
	} `json:"error"`
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) wire {
	t.Helper()
	var w wire
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w), rec.Body.String())
	return w
}

func TestSeedExampleIsExact(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	apierror.Write(rec, httptest.NewRequest("GET", "/v1/customers/x", nil),
		apierror.InvalidParam("customer_id", "Customer ID must be a valid UUID"))
	assert.Equal(t, 400, rec.Code)
	assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"error":{"code":"INVALID_REQUEST","message":"The request parameters are invalid","details":{"field":"customer_id","issue":"Customer ID must be a valid UUID"}}}`, rec.Body.String())
}

func TestEveryStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		header map[string]string
	}{
		{"400", apierror.InvalidRequest("bad", "f", "i"), 400, "INVALID_REQUEST", nil},
		{"401 missing", apierror.Unauthorized(""), 401, "UNAUTHORIZED", map[string]string{"WWW-Authenticate": `Bearer realm="api"`}},
		{"401 invalid", apierror.InvalidToken("API key revoked"), 401, "UNAUTHORIZED", map[string]string{"WWW-Authenticate": `Bearer realm="api", error="invalid_token", error_description="API key revoked"`}},
		{"403", apierror.Forbidden(""), 403, "FORBIDDEN", map[string]string{"WWW-Authenticate": ""}},
		{"403 scope", apierror.InsufficientScope([]string{"bookings:read", "staff:read"}, []string{"staff:read"}), 403, "INSUFFICIENT_SCOPE",
			map[string]string{"WWW-Authenticate": `Bearer realm="api", error="insufficient_scope", scope="bookings:read staff:read"`}},
		{"404", apierror.NotFound("customer"), 404, "NOT_FOUND", nil},
		{"405", apierror.MethodNotAllowed("GET", "POST"), 405, "METHOD_NOT_ALLOWED", map[string]string{"Allow": "GET, POST"}},
		{"406", apierror.NotAcceptable(), 406, "NOT_ACCEPTABLE", nil},
		{"409", apierror.Conflict("taken"), 409, "CONFLICT", nil},
		{"413", apierror.PayloadTooLarge(10), 413, "PAYLOAD_TOO_LARGE", nil},
		{"415", apierror.UnsupportedMediaType("application/json"), 415, "UNSUPPORTED_MEDIA_TYPE", nil},
		{"422", apierror.Unprocessable(apierror.FieldIssue{Field: "a", Issue: "x"}), 422, "UNPROCESSABLE_ENTITY", nil},
		{"429", apierror.RateLimited(30, map[string]string{"window": "1m"}), 429, "RATE_LIMITED", map[string]string{"Retry-After": "30"}},
		{"429 floor", apierror.RateLimited(0, nil), 429, "RATE_LIMITED", map[string]string{"Retry-After": "1"}},
		{"500", apierror.Internal(errors.New("db down")), 500, "INTERNAL_ERROR", nil},
		{"503", apierror.Unavailable(errors.New("db down")), 503, "SERVICE_UNAVAILABLE", map[string]string{"Retry-After": "1"}},
		{"wrapped", fmt.Errorf("handler: %w", apierror.NotFound("")), 404, "NOT_FOUND", nil},
		{"plain", errors.New("boom"), 500, "INTERNAL_ERROR", nil},
		{"max bytes", &http.MaxBytesError{Limit: 5}, 413, "PAYLOAD_TOO_LARGE", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			w := apierror.Writer{Logger: slog.New(slog.DiscardHandler)}
			w.Write(rec, httptest.NewRequest("GET", "/", nil), tc.err)
			assert.Equal(t, tc.status, rec.Code)
			got := decode(t, rec)
			assert.Equal(t, tc.code, got.Error.Code)
			assert.NotEmpty(t, got.Error.Message)
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			for k, v := range tc.header {
				assert.Equal(t, v, rec.Header().Get(k), k)
			}
		})
	}
}

func TestInternalCauseIsLoggedNotSent(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	w := apierror.Writer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	h := apierror.RequestID(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.Write(rw, r, fmt.Errorf("query customers: %w", errors.New("password=hunter2 connection refused")))
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Request-Id", "req-123")
	h.ServeHTTP(rec, req)
	assert.Equal(t, 500, rec.Code)
	assert.NotContains(t, rec.Body.String(), "hunter2")
	assert.NotContains(t, rec.Body.String(), "query customers")
	got := decode(t, rec)
	assert.Equal(t, "req-123", got.Error.RequestID)
	assert.Contains(t, logs.String(), "connection refused")
	assert.Contains(t, logs.String(), `"request_id":"req-123"`)
}

func TestClientErrorsAreNotLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	w := apierror.Writer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	w.Write(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), apierror.NotFound("x"))
	assert.Empty(t, logs.String())
}

func TestProblemDetails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		accept  string
		problem bool
	}{
		{"", false},
		{"application/json", false},
		{"application/problem+json", true},
		{"application/problem+json, application/json;q=0.5", true},
		{"application/json, application/problem+json;q=0.5", false},
		{"application/json, application/problem+json", true},
		{"application/problem+json;q=0", false},
		{"*/*", false},
	}
	for _, tc := range cases {
		t.Run(tc.accept, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			apierror.Write(rec, req, apierror.InvalidParam("customer_id", "must be a UUID"))
			if !tc.problem {
				assert.Equal(t, apierror.ContentTypeJSON, rec.Header().Get("Content-Type"))
				assert.Equal(t, "INVALID_REQUEST", decode(t, rec).Error.Code)
				return
			}
			assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
			var p map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
			assert.Equal(t, "about:blank", p["type"])
			assert.Equal(t, "Bad Request", p["title"])
			assert.EqualValues(t, 400, p["status"])
			assert.Equal(t, "INVALID_REQUEST", p["code"])
			assert.Equal(t, "The request parameters are invalid", p["detail"])
			assert.Equal(t, map[string]any{"field": "customer_id", "issue": "must be a UUID"}, p["details"])
		})
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	cases := []struct {
		accept string
		status int
	}{
		{"", 204},
		{"application/json", 204},
		{"*/*", 204},
		{"application/*", 204},
		{"text/html, */*;q=0.1", 204},
		{"application/problem+json", 204},
		{"text/xml", 406},
		{"text/html, image/png", 406},
		{"application/json;q=0", 406},
		{"application/json;q=0, */*", 406},
		{"*/*;q=0", 406},
		{"garbage;;;", 204},
	}
	for _, tc := range cases {
		t.Run(tc.accept, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			apierror.Negotiate(ok).ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			if tc.status == 406 {
				assert.Equal(t, "NOT_ACCEPTABLE", decode(t, rec).Error.Code)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	rc := apierror.Recoverer{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	h := apierror.RequestID(rc.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret state")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	assert.Equal(t, 500, rec.Code)
	got := decode(t, rec)
	assert.Equal(t, "INTERNAL_ERROR", got.Error.Code)
	assert.NotEmpty(t, got.Error.RequestID)
	assert.Equal(t, rec.Header().Get("X-Request-Id"), got.Error.RequestID)
	assert.NotContains(t, rec.Body.String(), "secret state")
	assert.Contains(t, logs.String(), "secret state")
	assert.Contains(t, logs.String(), "goroutine") // the stack
	assert.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"))

	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		rc.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })).
			ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var seen string
	h := apierror.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = apierror.RequestIDFromContext(r.Context())
	}))
	cases := []struct {
		in   string
		keep bool
	}{
		{"abc-123", true},
		{"", false},
		{"has space", false},
		{"bad\nline", false},
		{strings.Repeat("a", 129), false},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.in != "" {
			req.Header.Set("X-Request-Id", tc.in)
		}
		h.ServeHTTP(rec, req)
		assert.Equal(t, seen, rec.Header().Get("X-Request-Id"))
		if tc.keep {
			assert.Equal(t, tc.in, seen)
		} else {
			assert.Regexp(t, `^[0-9a-f]{32}$`, seen)
		}
	}
	// Generated ids are encoded into each request's own context: one never
	// changes when later requests get theirs.
	ids := map[string]bool{}
	var first string
	for i := range 100 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if i == 0 {
			first = strings.Clone(seen)
		}
		ids[seen] = true
	}
	assert.Len(t, ids, 100)
	assert.True(t, ids[first], "the first id still reads as it did")
}

type customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Age   int    `json:"age"`
}

func (c *customer) Validate() error {
	var v apierror.Validation
	v.Check(c.Name != "", "name", "is required")
	v.Check(strings.Contains(c.Email, "@"), "email", "must be an email address")
	return v.Err()
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ct     string
		body   string
		status int
		field  string
	}{
		{"ok", "application/json", `{"name":"Ada","email":"a@b"}`, 0, ""},
		{"ok charset", "application/json; charset=utf-8", `{"name":"Ada","email":"a@b"}`, 0, ""},
		{"ok +json", "application/merge-patch+json", `{"name":"Ada","email":"a@b"}`, 0, ""},
		{"no content type", "", `{}`, 415, "Content-Type"},
		{"form", "application/x-www-form-urlencoded", `a=b`, 415, "Content-Type"},
		{"empty", "application/json", ``, 400, "body"},
		{"syntax", "application/json", `{"name":`, 400, "body"},
		{"syntax mid", "application/json", `{"name" "x"}`, 400, "body"},
		{"type", "application/json", `{"name":"a","email":"a@b","age":"old"}`, 400, "age"},
		{"trailing", "application/json", `{"name":"a","email":"a@b"} {}`, 400, "body"},
		{"trailing brace", "application/json", `{"name":"a","email":"a@b"} }`, 400, "body"},
		{"trailing bracket", "application/json", `{"name":"a","email":"a@b"}]`, 400, "body"},
		{"ok trailing space", "application/json", "{\"name\":\"Ada\",\"email\":\"a@b\"} \n\t", 0, ""},
		{"unknown", "application/json", `{"name":"a","email":"a@b","id":"x"}`, 422, "id"},
		{"validation", "application/json", `{"email":"nope"}`, 422, "name"},
		{"too big", "application/json", `{"name":"` + strings.Repeat("a", 200) + `"}`, 413, ""},
		{"not object", "application/json", `[1,2]`, 400, "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			rec := httptest.NewRecorder()
			var c customer
			err := apierror.Decoder{MaxBytes: 100}.Decode(rec, req, &c)
			if tc.status == 0 {
				require.NoError(t, err)
				assert.Equal(t, "Ada", c.Name)
				return
			}
			require.Error(t, err)
			e := apierror.From(err)
			assert.Equal(t, tc.status, e.Status, e.Message)
			apierror.Write(rec, req, err)
			assert.Equal(t, tc.status, rec.Code)
			if tc.field != "" {
				var d struct {
					Error struct {
						Details struct{ Field string } `json:"details"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
				assert.Equal(t, tc.field, d.Error.Details.Field)
			}
		})
	}
}

func TestValidationCollectsEveryField(t *testing.T) {
	t.Parallel()
	var v apierror.Validation
	assert.NoError(t, v.Err())
	v.Check(false, "name", "is required")
	v.Check(true, "ok", "never")
	v.Add("email", "must be an email address")
	rec := httptest.NewRecorder()
	apierror.Write(rec, httptest.NewRequest("POST", "/", nil), v.Err())
	assert.Equal(t, 422, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"UNPROCESSABLE_ENTITY","message":"The request contains invalid fields",
		"details":{"field":"name","issue":"is required","errors":[{"field":"name","issue":"is required"},{"field":"email","issue":"must be an email address"}]}}}`, rec.Body.String())
}

func TestHeadHasNoBody(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	apierror.Write(rec, httptest.NewRequest("HEAD", "/", nil), apierror.NotFound(""))
	assert.Equal(t, 404, rec.Code)
	assert.Empty(t, rec.Body.String())
}

func BenchmarkWrite(b *testing.B) {
	req := httptest.NewRequest("GET", "/", nil)
	e := apierror.InvalidParam("customer_id", "Customer ID must be a valid UUID")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		apierror.Write(rec, req, e)
	}
}

// downErr is a dependency's outage, as storage.ErrUnavailable reports it.
type downErr struct{}

func (downErr) Error() string     { return "db: connection refused (password=hunter2)" }
func (downErr) Unavailable() bool { return true }

func TestUnavailableDependencyIs503(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	w := apierror.Writer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	rec := httptest.NewRecorder()
	w.Write(rec, httptest.NewRequest("GET", "/", nil), fmt.Errorf("list customers: %w", downErr{}))
	assert.Equal(t, 503, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Equal(t, apierror.CodeUnavailable, decode(t, rec).Error.Code)
	assert.NotContains(t, rec.Body.String(), "hunter2")
	assert.Contains(t, logs.String(), "connection refused", "the cause is logged")
}

func TestAbandonedRequestIsNotAnError(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	w := apierror.Writer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the client went away
	rec := httptest.NewRecorder()
	w.Write(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), fmt.Errorf("query: failed to connect: %w", context.Canceled))
	assert.Equal(t, apierror.StatusClientClosedRequest, rec.Code)
	assert.NotContains(t, logs.String(), `"level":"ERROR"`)
	assert.Contains(t, logs.String(), "request abandoned")

	// A failure that does not name the cancellation, once the client is
	// gone (database/sql's "bad connection" after a cancelled query): the
	// same 499, its cause logged at Info.
	logs.Reset()
	rec = httptest.NewRecorder()
	w.Write(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), fmt.Errorf("list customers: %w", downErr{}))
	assert.Equal(t, apierror.StatusClientClosedRequest, rec.Code)
	assert.NotContains(t, logs.String(), `"level":"ERROR"`)
	assert.Contains(t, logs.String(), "request abandoned")
	assert.Contains(t, logs.String(), "connection refused", "the cause is still logged")

	// A client's own mistake stays what it is.
	rec = httptest.NewRecorder()
	w.Write(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx), apierror.InvalidParam("limit", "must be a number"))
	assert.Equal(t, 400, rec.Code)

	// A deadline the server set that passed (a per-request timeout over a
	// backend that hangs): the client is still there; 503 and Retry-After,
	// logged as our failure.
	logs.Reset()
	dctx, dcancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer dcancel()
	for _, cause := range []error{fmt.Errorf("list customers: %w", context.DeadlineExceeded), fmt.Errorf("list customers: %w", downErr{})} {
		rec = httptest.NewRecorder()
		w.Write(rec, httptest.NewRequest("GET", "/", nil).WithContext(dctx), cause)
		assert.Equal(t, 503, rec.Code, "%v", cause)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"))
		assert.Equal(t, apierror.CodeUnavailable, decode(t, rec).Error.Code)
	}
	assert.Contains(t, logs.String(), `"level":"ERROR"`)

	// A cancellation that is not the request's own is still our failure.
	logs.Reset()
	rec = httptest.NewRecorder()
	w.Write(rec, httptest.NewRequest("GET", "/", nil), fmt.Errorf("query: %w", context.Canceled))
	assert.Equal(t, 500, rec.Code)
	assert.Contains(t, logs.String(), `"level":"ERROR"`)
}

// FuzzRequestID: X-Request-Id is the client's to choose, and RequestID
// writes it into logs, the response header and every error envelope. An
// incoming id is kept only when it is 1–128 characters of
// [A-Za-z0-9._:-]; anything else is replaced by 32 hex digits; the
// envelope names the same id as the header.
func FuzzRequestID(f *testing.F) {
	for _, s := range []string{"req-7f3a", "", strings.Repeat("a", 128), strings.Repeat("a", 129), "a\r\nSet-Cookie: x=1", "id with spaces", "ünï", "a:b.c_d-e"} {
		f.Add(s)
	}
	h := apierror.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := apierror.RequestIDFromContext(r.Context()); got != w.Header().Get("X-Request-Id") {
			panic("the context and the header disagree: " + got)
		}
		apierror.Write(w, r, apierror.NotFound("booking"))
	}))
	allowed := func(s string) bool {
		return s != "" && len(s) <= 128 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") == ""
	}
	f.Fuzz(func(t *testing.T, incoming string) {
		req := httptest.NewRequest("GET", "/v1/bookings/1", nil)
		req.Header["X-Request-Id"] = []string{incoming} // as sent, unchecked by Header.Set
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-Id")
		switch {
		case allowed(incoming) && id != incoming:
			t.Fatalf("a well-formed id %q was replaced by %q", incoming, id)
		case !allowed(incoming) && (len(id) != 32 || strings.Trim(id, "0123456789abcdef") != ""):
			t.Fatalf("id %q for malformed %q: want 32 hex digits", id, incoming)
		}
		var env struct {
			Error struct {
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.RequestID != id {
			t.Fatalf("envelope %s does not name id %q (%v)", rec.Body.String(), id, err)
		}
	})
}

// FuzzAccept: the Accept header is the client's, parsed on every request
// that Negotiate guards. For any value, Negotiate answers 406 exactly
// when AcceptsJSON is false, and then with an envelope a client can read;
// a request that prefers problem details accepts JSON; and naming
// application/json outright always makes JSON acceptable.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"", "application/json", "*/*;q=0", "text/html, */*;q=0.1", "application/json;q=0, */*",
		"application/problem+json;q=0.5, application/json;q=0", "garbage;;;", "application/*;q=1.5", "a/b;q=NaN", `x/y;q="0"`, "\x00/\xff"} {
		f.Add(s)
	}
	h := apierror.Negotiate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	request := func(accept string) *http.Request {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		req.Header["Accept"] = []string{accept} // as sent, unchecked by Header.Set
		return req
	}
	f.Fuzz(func(t *testing.T, accept string) {
		req := request(accept)
		ok := apierror.AcceptsJSON(req)
		if apierror.PrefersProblem(req) && !ok {
			t.Fatalf("Accept %q prefers problem details but does not accept JSON", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case ok && rec.Code != 204:
			t.Fatalf("Accept %q accepts JSON but Negotiate answered %d", accept, rec.Code)
		case !ok && rec.Code != http.StatusNotAcceptable:
			t.Fatalf("Accept %q does not accept JSON but Negotiate answered %d", accept, rec.Code)
		case !ok:
			var env struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code != "NOT_ACCEPTABLE" {
				t.Fatalf("406 for Accept %q: body %q is not the envelope (%v)", accept, rec.Body.String(), err)
			}
		}
		if !apierror.AcceptsJSON(request(accept + ", application/json")) {
			t.Fatalf("Accept %q, application/json does not accept JSON", accept)
		}
	})
}

// BenchmarkDeadline is what apierror.Deadline adds to a request: a
// context with a timer, and the request's copy that carries it.
func BenchmarkDeadline(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("GET", "/v1/bookings", nil)
	w := httptest.NewRecorder()
	for name, h := range map[string]http.Handler{"without": noop, "with": apierror.Deadline(10 * time.Second)(noop)} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
