package main_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	// A full run must have validated a response of every documented
	// operation: the OpenAPI document and the suite cover the same API.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		if missing := uncovered(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test exercised these documented operations: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// server is a running server process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	// metrics is the URL of GET /metrics on the server's own metrics
	// listener (-metrics-addr), never the API address.
	metrics string
	db      string
	demo    map[string]string
	stderr  *bytes.Buffer
	mu      *sync.Mutex
	// spec validates every response s.http carries against the server's
	// /openapi.json.
	spec *specChecker
	http *http.Client
}

func start(t *testing.T, db string, extra ...string) *server {
	t.Helper()
	args := append([]string{"-addr", "127.0.0.1:0", "-db", db, "-webhook-allow", "127.0.0.1/32", "-metrics-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	s := &server{t: t, cmd: cmd, db: db, demo: map[string]string{}, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stderr = lockedWriter{s.mu, s.stderr}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	field := regexp.MustCompile(`^\s+(organisation \(domain_prefix\)|user|OAuth client|client secret|redirect URI|test API key \(sandbox\)|live API key)\s+(.+)$`)
	for sc.Scan() {
		line := sc.Text()
		if m := field.FindStringSubmatch(line); m != nil {
			s.demo[m[1]] = m[2]
		}
		if rest, ok := strings.CutPrefix(line, "metrics on "); ok {
			s.metrics = rest
		}
		if rest, ok := strings.CutPrefix(line, "gatehouse listening on "); ok {
			s.base = rest
			break
		}
	}
	require.NotEmpty(t, s.base, "server did not start: %s", s.logs())
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if slices.Contains(extra, "-issuer") {
		// The document names the public URL, not this listener: its
		// requests cannot be matched to it, so they go unchecked.
		s.http = &http.Client{}
		return s
	}
	s.spec = loadSpec(t, s.base)
	s.http = s.spec.client(nil)
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// demoPasswordForm is TidyHQ's password grant for the demo user, with the
// demo application's credentials.
func (s *server) demoPasswordForm() url.Values {
	return url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "client_id": {s.demo["OAuth client"]}, "client_secret": {s.demo["client secret"]},
		"username": {"demo@example.com"}, "password": {strings.Fields(s.demo["user"])[2]}}
}

// passwordToken runs the demo password grant and returns the access token.
func (s *server) passwordToken(t *testing.T) string {
	t.Helper()
	return s.tokenFor(t, s.demoPasswordForm())
}

// postForm POSTs form to path on s with the extra headers (name, value,
// …) and returns the status.
func (s *server) postForm(t *testing.T, path string, form url.Values, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequest("POST", s.base+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.http.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// tokenFor runs a grant on s that must succeed, and returns its access
// token.
func (s *server) tokenFor(t *testing.T, form url.Values) string {
	t.Helper()
	res, err := s.http.PostForm(s.base+"/oauth/token", form)
	require.NoError(t, err)
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	require.Equal(t, 200, res.StatusCode)
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

func (s *server) logs() string { s.mu.Lock(); defer s.mu.Unlock(); return s.stderr.String() }

func admin(t *testing.T, db string, args ...string) map[string]any {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"admin"}, append(args, "-db", db)...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m), string(out))
	return m
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (s *server) do(method, path, token string, body any, hdr ...string) resp {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.http.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

// TestReferenceServerEndToEnd drives the server binary over HTTP and the
// admin CLI, on SQLite and on PostgreSQL + Redis.
func TestReferenceServerEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
		endToEnd(t, start(t, db), db)
	})
	t.Run("postgres+redis", func(t *testing.T) {
		s, db := pgServer(t, "-redis", testenv.Redis(t))
		endToEnd(t, s, db)
	})
	t.Run("sqlite-jwt", func(t *testing.T) { // the same with RFC 9068 access tokens
		db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
		endToEnd(t, start(t, db, "-jwt"), db)
	})
}

func endToEnd(t *testing.T, s *server, db string) {
	testKey, liveKey := s.demo["test API key (sandbox)"], s.demo["live API key"]
	require.True(t, strings.HasPrefix(testKey, "gate_test_"), "demo credentials printed: %v", s.demo)
	require.True(t, strings.HasPrefix(liveKey, "gate_live_"))

	// The seed's exact error example.
	r := s.do("GET", "/v1/customers/not-a-uuid", testKey, nil)
	assert.Equal(t, 400, r.status)
	env := r.json(t)["error"].(map[string]any)
	assert.NotEmpty(t, env["request_id"], "the envelope carries the request id")
	delete(env, "request_id")
	seed, _ := json.Marshal(map[string]any{"error": env})
	assert.JSONEq(t, `{"error":{"code":"INVALID_REQUEST","message":"The request parameters are invalid","details":{"field":"customer_id","issue":"Customer ID must be a valid UUID"}}}`, string(seed))

	assert.Equal(t, 406, s.do("GET", "/v1/customers", testKey, nil, "Accept", "text/xml").status)
	assert.Equal(t, 401, s.do("GET", "/v1/customers", "", nil).status)
	assert.Equal(t, 401, s.do("GET", "/v1/customers", "gate_test_"+strings.Repeat("A", 39), nil).status)
	assert.Equal(t, 404, s.do("GET", "/v1/nothing", testKey, nil).status)
	r = s.do("POST", "/v1/analytics/summary", testKey, nil)
	assert.Equal(t, 405, r.status, "a known path with another method")
	assert.Equal(t, "GET", r.header.Get("Allow"))
	assert.Equal(t, "GET, POST", s.do("DELETE", "/v1/customers", testKey, nil).header.Get("Allow"))

	me := s.do("GET", "/v1/contacts/me", testKey, nil)
	require.Equal(t, 200, me.status, string(me.body))
	assert.Equal(t, "demo@example.com", me.json(t)["email"])
	assert.NotEmpty(t, me.header.Get("X-RateLimit-Limit"))
	assert.NotEmpty(t, me.header.Get("X-RateLimit-Remaining"))
	assert.NotEmpty(t, me.header.Get("X-RateLimit-Reset"))
	// TidyHQ's responses are private to their caller; errors are no-store.
	assert.Equal(t, "max-age=0, private, must-revalidate", me.header.Get("Cache-Control"))
	assert.Equal(t, "no-store", s.do("GET", "/v1/customers", "", nil).header.Get("Cache-Control"), "a 401")
	// Tiquo's standard plan: 1000/hour and 100/minute; the minute binds first.
	assert.Equal(t, "100", me.header.Get("X-RateLimit-Limit"))
	assert.Contains(t, me.header.Get("RateLimit-Policy"), "q=1000;w=3600")
	assert.Contains(t, me.header.Get("RateLimit-Policy"), "q=100;w=60")

	// The budget, read without spending it (the reads in one minute window).
	testenv.ClearOfMinuteBoundary(10 * time.Second)
	first := s.do("GET", "/v1/rate-limit", testKey, nil)
	require.Equal(t, 200, first.status, string(first.body))
	left := first.header.Get("X-RateLimit-Remaining")
	for range 3 {
		assert.Equal(t, left, s.do("GET", "/v1/rate-limit", testKey, nil).header.Get("X-RateLimit-Remaining"), "reading the budget spends none of it")
	}
	windows := first.json(t)["windows"].([]any)
	require.Len(t, windows, 2)
	assert.Equal(t, "1000/h", windows[0].(map[string]any)["window"])
	assert.Equal(t, "100/m", windows[1].(map[string]any)["window"])
	n, _ := strconv.Atoi(left)
	assert.Equal(t, strconv.Itoa(n-1), s.do("GET", "/v1/contacts/me", testKey, nil).header.Get("X-RateLimit-Remaining"), "a request of the API spends one")
	assert.Equal(t, 401, s.do("GET", "/v1/rate-limit", "", nil).status)

	// A webhook receiver, verified with the official library.
	var mu sync.Mutex
	var received []map[string]any
	var secret string
	rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		wh, _ := standardwebhooks.NewWebhook(secret)
		if wh == nil || wh.Verify(b, r.Header) != nil {
			w.WriteHeader(401)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		received = append(received, m)
	})}
	ln, err := netListen()
	require.NoError(t, err)
	go func() { _ = rcv.Serve(ln) }()
	defer rcv.Close()
	// The event types a subscription may name, each described.
	r = s.do("GET", "/v1/webhooks/event-types", testKey, nil)
	require.Equal(t, 200, r.status, string(r.body))
	var catalog []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &catalog))
	described := map[string]bool{}
	for _, et := range catalog {
		assert.NotEmpty(t, et["description"], et["type"])
		described[et["type"].(string)] = et["subscribable"].(bool)
	}
	assert.Equal(t, map[string]bool{"booking.created": true, "booking.updated": true, "booking.cancelled": true, "payment.completed": true, "payment.refunded": true,
		"customer.created": true, "customer.updated": true, "staff.schedule_changed": true, "webhook.disabled": true, "webhook.test": false}, described)
	r = s.do("POST", "/v1/webhooks", testKey, map[string]any{"url": "http://" + ln.Addr().String() + "/hooks", "events": []string{"booking.*", "customer.created"}})
	require.Equal(t, 201, r.status, string(r.body))
	mu.Lock()
	secret = r.json(t)["secret"].(string)
	mu.Unlock()
	assert.True(t, strings.HasPrefix(secret, "whsec_"))
	webhookID := r.json(t)["id"].(string)
	assert.Nil(t, s.do("GET", "/v1/webhooks/"+webhookID, testKey, nil).json(t)["secret"], "the secret is shown once")
	r = s.do("POST", "/v1/webhooks", testKey, map[string]any{"url": "http://169.254.169.254/latest", "events": []string{"nope.event"}, "secret": "plain"})
	assert.Equal(t, 422, r.status)
	// The seed's own example, its plain secret kept in the whsec_ form of
	// its bytes (then removed, before any event could reach it).
	r = s.do("POST", "/v1/webhooks", testKey, map[string]any{"url": "http://" + ln.Addr().String() + "/webhooks/tiquo", "events": []string{"booking.created", "payment.completed"}, "secret": "webhook_secret_for_verification"})
	require.Equal(t, 201, r.status, string(r.body))
	assert.Equal(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("webhook_secret_for_verification")), r.json(t)["secret"])
	assert.Equal(t, 204, s.do("DELETE", "/v1/webhooks/"+r.json(t)["id"].(string), testKey, nil).status)

	// Text no store can hold is the client's error, never a 500 (it was
	// one on PostgreSQL): a NUL in a JSON field, and in the password
	// grant's lookups of the organisation and the user.
	r = s.do("POST", "/v1/customers", testKey, map[string]any{"first_name": "Ada\x00", "last_name": "Lovelace", "email": "ada@example.com"})
	assert.Equal(t, 400, r.status, string(r.body))
	assert.Equal(t, map[string]any{"field": "first_name", "issue": "must not contain the character U+0000"}, r.json(t)["error"].(map[string]any)["details"])
	for field, bad := range map[string]string{"domain_prefix": "\x00", "username": "\xff"} {
		form := s.demoPasswordForm()
		form.Set(field, form.Get(field)+bad)
		assert.Equal(t, 400, s.postForm(t, "/oauth/token", form), "%q in %s: invalid_grant", bad, field)
	}

	// The sandbox starts with test data (the seed's "test customers and
	// bookings"), every reference in it naming a record of the sandbox;
	// live has the staff alone.
	for kind, n := range map[string][2]string{"customers": {"3", "0"}, "bookings": {"3", "0"}, "payments": {"2", "0"}, "staff": {"2", "2"}} {
		r = s.do("GET", "/v1/"+kind, testKey, nil)
		require.Equal(t, 200, r.status, string(r.body))
		assert.Equal(t, n[0], r.header.Get("X-Pagination-Total-Entries"), "test %s", kind)
		assert.Equal(t, n[1], s.do("GET", "/v1/"+kind, liveKey, nil).header.Get("X-Pagination-Total-Entries"), "live %s", kind)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal(r.body, &rows))
		for _, row := range rows {
			for field, path := range map[string]string{"customer_id": "/v1/customers/", "staff_id": "/v1/staff/", "booking_id": "/v1/bookings/"} {
				if id, ok := row[field].(string); ok {
					assert.Equal(t, 200, s.do("GET", path+id, testKey, nil).status, "%s of %s %s", field, kind, row["id"])
					assert.Equal(t, 404, s.do("GET", path+id, liveKey, nil).status, "%s of %s %s, from live", field, kind, row["id"])
				}
			}
		}
	}

	// The documented code samples run as printed against this server.
	runSamples(t, s, testKey)

	// Customers: create, mass assignment refused, validation, get, update, list.
	r = s.do("POST", "/v1/customers", testKey, map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
	require.Equal(t, 201, r.status, string(r.body))
	cust := r.json(t)
	custID := cust["id"].(string)
	assert.Contains(t, cust, "phone")
	assert.Nil(t, cust["phone"], "blank fields are null")
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, cust["created_at"])
	r = s.do("POST", "/v1/customers", testKey, map[string]any{"first_name": "X", "last_name": "Y", "email": "x@example.com", "id": "00000000-0000-0000-0000-000000000000"})
	assert.Equal(t, 422, r.status, "mass assignment of id is refused")
	r = s.do("POST", "/v1/customers", testKey, map[string]any{"first_name": "", "email": "nope"})
	assert.Equal(t, 422, r.status)
	fields := []string{}
	for _, e := range r.json(t)["error"].(map[string]any)["details"].(map[string]any)["errors"].([]any) {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	assert.ElementsMatch(t, []string{"last_name", "first_name", "email"}, fields)
	gr := s.do("GET", "/v1/customers/"+custID, testKey, nil)
	assert.Equal(t, 200, gr.status, string(gr.body))
	r = s.do("PATCH", "/v1/customers/"+custID, testKey, map[string]any{"phone": "+61 400 000 000"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "+61 400 000 000", r.json(t)["phone"])
	for range 3 {
		s.do("POST", "/v1/customers", testKey, map[string]any{"first_name": "C", "last_name": "D", "email": "c@example.com"})
	}
	r = s.do("GET", "/v1/customers?per_page=2&page=2", testKey, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "2", r.header.Get("X-Pagination-Per-Page"))
	assert.Equal(t, "2", r.header.Get("X-Pagination-Current-Page"))
	assert.Equal(t, "4", r.header.Get("X-Pagination-Total-Pages"))
	assert.Equal(t, "7", r.header.Get("X-Pagination-Total-Entries"), "the sandbox's 3 and these 4")
	assert.Contains(t, r.header.Get("Link"), `rel="prev"`)
	assert.Equal(t, 400, s.do("GET", "/v1/customers?limit=5&per_page=5", testKey, nil).status)

	// Sandbox: the live key sees none of the test data.
	assert.Equal(t, 404, s.do("GET", "/v1/customers/"+custID, liveKey, nil).status)
	assert.Equal(t, "0", s.do("GET", "/v1/customers", liveKey, nil).header.Get("X-Pagination-Total-Entries"))

	// Bookings and payments.
	r = s.do("POST", "/v1/bookings", testKey, map[string]any{"customer_id": custID, "service": "Haircut", "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z"})
	require.Equal(t, 201, r.status, string(r.body))
	bookingID := r.json(t)["id"].(string)
	r = s.do("POST", "/v1/bookings/"+bookingID+"/cancel", testKey, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "cancelled", r.json(t)["status"])
	assert.Equal(t, 409, s.do("POST", "/v1/bookings/"+bookingID+"/cancel", testKey, nil).status)
	r = s.do("POST", "/v1/payments", testKey, map[string]any{"customer_id": custID, "amount": 4500, "currency": "AUD"})
	require.Equal(t, 201, r.status, string(r.body))
	payID := r.json(t)["id"].(string)
	assert.Equal(t, "refunded", s.do("POST", "/v1/payments/"+payID+"/refund", testKey, nil).json(t)["status"])
	assert.Equal(t, 409, s.do("POST", "/v1/payments/"+payID+"/refund", testKey, nil).status, "refunded once")
	assert.Equal(t, "refunded", s.do("GET", "/v1/payments/"+payID, testKey, nil).json(t)["status"])
	assert.Equal(t, "3", s.do("GET", "/v1/payments", testKey, nil).header.Get("X-Pagination-Total-Entries"))
	assert.Equal(t, 404, s.do("GET", "/v1/payments/"+payID, liveKey, nil).status, "sandbox isolation")
	assert.Equal(t, "cancelled", s.do("GET", "/v1/bookings/"+bookingID, testKey, nil).json(t)["status"])
	r = s.do("POST", "/v1/bookings", testKey, map[string]any{"customer_id": custID, "service": "Colour", "starts_at": "2026-12-02T10:00:00Z", "ends_at": "2026-12-02T12:00:00Z"})
	require.Equal(t, 201, r.status, string(r.body))
	second := r.json(t)["id"].(string)
	r = s.do("PATCH", "/v1/bookings/"+second, testKey, map[string]any{"notes": "Window seat"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "Window seat", r.json(t)["notes"])
	r = s.do("PUT", "/v1/bookings/"+second, testKey, map[string]any{"starts_at": "2026-12-02T13:00:00Z", "ends_at": "2026-12-02T12:00:00Z"})
	assert.Equal(t, 422, r.status, "ends before it starts")
	r = s.do("PUT", "/v1/bookings/"+second, testKey, map[string]any{"customer_id": custID, "service": "Cut", "starts_at": "2026-12-02T13:00:00+02:00", "ends_at": "2026-12-02T14:00:00+02:00"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "2026-12-02T11:00:00Z", r.json(t)["starts_at"], "stored in UTC")
	r = s.do("PUT", "/v1/customers/"+custID, testKey, map[string]any{"first_name": "Augusta Ada", "last_name": "King", "email": "ada@example.com"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "Augusta Ada", r.json(t)["first_name"])
	sum := s.do("GET", "/v1/analytics/summary", testKey, nil).json(t)
	assert.EqualValues(t, 7, sum["customers"])
	assert.EqualValues(t, 2, sum["bookings_cancelled"], "one of the sandbox's and one above")
	staff := s.do("GET", "/v1/staff", testKey, nil)
	require.Equal(t, 200, staff.status)
	var members []map[string]any
	require.NoError(t, json.Unmarshal(staff.body, &members))
	require.Len(t, members, 2)
	assert.Equal(t, members[0]["id"], s.do("GET", "/v1/staff/"+members[0]["id"].(string), testKey, nil).json(t)["id"])
	r = s.do("PUT", "/v1/staff/"+members[0]["id"].(string)+"/schedule", testKey, map[string]any{"schedule": []map[string]string{{"day": "tuesday", "start": "10:00", "end": "18:00"}}})
	assert.Equal(t, 200, r.status, string(r.body))

	// Webhooks arrive, signed: customer.created ×4, booking.created, booking.cancelled.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) >= 9 }, 15*time.Second, 50*time.Millisecond)
	mu.Lock()
	types := map[string]int{}
	for _, m := range received {
		types[m["type"].(string)]++
	}
	mu.Unlock()
	assert.Equal(t, map[string]int{"customer.created": 4, "booking.created": 2, "booking.cancelled": 1, "booking.updated": 2}, types)
	d := s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries", testKey, nil)
	require.Equal(t, 200, d.status)
	var deliveries []map[string]any
	require.NoError(t, json.Unmarshal(d.body, &deliveries))
	require.NotEmpty(t, deliveries)
	r = s.do("POST", "/v1/webhooks/"+webhookID+"/deliveries/"+deliveries[0]["id"].(string)+"/redeliver", testKey, nil)
	assert.Equal(t, 202, r.status, string(r.body))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == 10 }, 15*time.Second, 50*time.Millisecond, "the redelivery arrives")
	// Its attempts: the first and the redelivery, each answered 200.
	var attempts []map[string]any
	require.Eventually(t, func() bool {
		r := s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries/"+deliveries[0]["id"].(string)+"/attempts", testKey, nil)
		attempts = nil
		return r.status == 200 && json.Unmarshal(r.body, &attempts) == nil && len(attempts) >= 2
	}, 15*time.Second, 50*time.Millisecond, "both attempts recorded")
	for _, at := range attempts {
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, at["at"])
	}
	assert.EqualValues(t, 200, attempts[len(attempts)-1]["status_code"], "the redelivery, answered 200")
	assert.Nil(t, attempts[len(attempts)-1]["error"])
	assert.Equal(t, 404, s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries/"+"01890a5d-ac96-774b-bcce-b302099a8057"+"/attempts", testKey, nil).status)
	assert.Equal(t, 404, s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries/"+deliveries[0]["id"].(string)+"/attempts", liveKey, nil).status)
	assert.Equal(t, 400, s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries/nope/attempts", testKey, nil).status)
	// A test event, to this subscription though none of its patterns
	// covers webhook.test; another environment's key cannot send one.
	assert.Equal(t, 404, s.do("POST", "/v1/webhooks/"+webhookID+"/test", liveKey, nil).status)
	r = s.do("POST", "/v1/webhooks/"+webhookID+"/test", testKey, nil)
	require.Equal(t, 202, r.status, string(r.body))
	testEventID := r.json(t)["event_id"].(string)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == 11 }, 15*time.Second, 50*time.Millisecond, "the test event arrives, verified")
	mu.Lock()
	assert.Equal(t, "webhook.test", received[10]["type"])
	assert.Equal(t, webhookID, received[10]["data"].(map[string]any)["subscription_id"])
	mu.Unlock()
	d = s.do("GET", "/v1/webhooks/"+webhookID+"/deliveries", testKey, nil)
	require.NoError(t, json.Unmarshal(d.body, &deliveries))
	assert.Equal(t, testEventID, deliveries[0]["event_id"], "listed first among its deliveries")

	// The subscription changes: its events, checked as at creation; its
	// owner disables it and enables it again; its secret rotates, and the
	// next delivery verifies with the new one.
	r = s.do("PATCH", "/v1/webhooks/"+webhookID, testKey, map[string]any{"events": []string{"booking.*", "customer.created", "payment.completed"}})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, []any{"booking.*", "customer.created", "payment.completed"}, r.json(t)["events"])
	assert.Equal(t, 422, s.do("PATCH", "/v1/webhooks/"+webhookID, testKey, map[string]any{"url": "http://169.254.169.254/latest"}).status)
	assert.Equal(t, 422, s.do("PATCH", "/v1/webhooks/"+webhookID, testKey, map[string]any{"events": []string{}}).status, "no events")
	assert.Equal(t, 404, s.do("PATCH", "/v1/webhooks/"+webhookID, liveKey, map[string]any{"enabled": false}).status)
	r = s.do("PATCH", "/v1/webhooks/"+webhookID, testKey, map[string]any{"enabled": false})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, false, r.json(t)["enabled"])
	assert.Equal(t, "disabled by its owner", r.json(t)["disabled_reason"])
	assert.Equal(t, 409, s.do("POST", "/v1/webhooks/"+webhookID+"/test", testKey, nil).status, "nothing goes to a disabled subscription")
	r = s.do("PATCH", "/v1/webhooks/"+webhookID, testKey, map[string]any{"enabled": true})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, true, r.json(t)["enabled"])
	assert.Nil(t, r.json(t)["disabled_reason"])
	r = s.do("POST", "/v1/webhooks/"+webhookID+"/rotate-secret", testKey, map[string]any{})
	require.Equal(t, 200, r.status, string(r.body))
	rotated := r.json(t)["secret"].(string)
	assert.True(t, strings.HasPrefix(rotated, "whsec_"))
	assert.NotEqual(t, secret, rotated)
	assert.NotEmpty(t, r.json(t)["previous_secret_valid_until"])
	assert.Nil(t, s.do("GET", "/v1/webhooks/"+webhookID, testKey, nil).json(t)["secret"], "the new secret is shown once")
	mu.Lock()
	secret = rotated // the receiver now verifies with the new secret alone
	mu.Unlock()
	require.Equal(t, 202, s.do("POST", "/v1/webhooks/"+webhookID+"/test", testKey, nil).status)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(received) == 12 }, 15*time.Second, 50*time.Millisecond, "signed with the new secret")
	r = s.do("POST", "/v1/webhooks/"+webhookID+"/rotate-secret", testKey, map[string]any{"secret": "short"})
	assert.Equal(t, 422, r.status, "a chosen secret is checked")
	assert.Equal(t, "1", s.do("GET", "/v1/webhooks", testKey, nil).header.Get("X-Pagination-Total-Entries"))
	assert.Equal(t, "0", s.do("GET", "/v1/webhooks", liveKey, nil).header.Get("X-Pagination-Total-Entries"), "sandbox isolation")

	// Scopes: a key with bookings:read only.
	testenv.ClearOfMinuteBoundary(10 * time.Second) // its 3/m budget below must fall in one window
	k := admin(t, db, "key", "create", "--org", "demo", "--name", "RO", "--scopes", "bookings:read", "--env", "test", "--rate-limit", "3/m")
	roKey := k["key"].(string)
	r = s.do("POST", "/v1/bookings", roKey, map[string]any{})
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "INSUFFICIENT_SCOPE", r.json(t)["error"].(map[string]any)["code"])
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `insufficient_scope`)
	// Its own rate limit: 3 a minute (one used above).
	assert.Equal(t, 200, s.do("GET", "/v1/bookings", roKey, nil).status)
	assert.Equal(t, 200, s.do("GET", "/v1/bookings", roKey, nil).status)
	r = s.do("GET", "/v1/bookings", roKey, nil)
	assert.Equal(t, 429, r.status)
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Equal(t, "RATE_LIMITED", r.json(t)["error"].(map[string]any)["code"])
	// Revocation through the CLI.
	admin(t, db, "key", "revoke", "--id", k["id"].(string))
	require.Eventually(t, func() bool { return s.do("GET", "/v1/contacts/me", roKey, nil).status == 401 }, 10*time.Second, 200*time.Millisecond)

	// Another organisation cannot reach the demo's data.
	admin(t, db, "org", "create", "--prefix", "acme", "--name", "Acme Ltd")
	// The enterprise plan is ten times the standard one.
	admin(t, db, "org", "create", "--prefix", "bigco", "--name", "Big Co", "--plan", "enterprise")
	big := admin(t, db, "key", "create", "--org", "bigco", "--name", "x", "--scopes", "customers:read", "--env", "test")["key"].(string)
	r = s.do("GET", "/v1/customers", big, nil)
	assert.Equal(t, "3", r.header.Get("X-Pagination-Total-Entries"), "a new organisation's sandbox has its test data")
	assert.Equal(t, "1000", r.header.Get("X-RateLimit-Limit"), "enterprise: 1000/minute")
	assert.Contains(t, r.header.Get("RateLimit-Policy"), "q=10000;w=3600")
	other := admin(t, db, "key", "create", "--org", "acme", "--name", "x", "--scopes", "customers:read webhooks:read", "--env", "test")["key"].(string)
	assert.Equal(t, 404, s.do("GET", "/v1/customers/"+custID, other, nil).status)
	assert.Equal(t, 404, s.do("GET", "/v1/webhooks/"+webhookID, other, nil).status)
	assert.Equal(t, 404, s.do("DELETE", "/v1/webhooks/"+webhookID, liveKey, nil).status, "another environment's webhook")
	assert.Equal(t, 204, s.do("DELETE", "/v1/webhooks/"+webhookID, testKey, nil).status)
	assert.Equal(t, 404, s.do("GET", "/v1/webhooks/"+webhookID, testKey, nil).status)

	// OAuth: TidyHQ's password grant with domain_prefix, then the token in
	// the header and as access_token.
	admin(t, db, "user", "create", "--org", "acme", "--email", "bob@acme.test", "--password", "correct horse battery")
	form := s.demoPasswordForm()
	at := s.passwordToken(t)
	r = s.do("GET", "/v1/contacts/me", at, nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "demo@example.com", r.json(t)["email"])
	res, err := s.http.Get(s.base + "/v1/contacts/me?access_token=" + url.QueryEscape(at))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "max-age=0, private, must-revalidate", res.Header.Get("Cache-Control"), "RFC 6750 §2.3: no shared cache keeps a response whose URL carries the token")
	assert.Equal(t, "max-age=0, private, must-revalidate", r.header.Get("Cache-Control"), "the same request with the token in the header")
	assert.Equal(t, 0, len(s.do("GET", "/v1/customers", at, nil).body)-len(s.do("GET", "/v1/customers", liveKey, nil).body), "OAuth tokens see live data")
	form.Set("domain_prefix", "acme")
	res, _ = s.http.PostForm(s.base+"/oauth/token", form)
	assert.Equal(t, 400, res.StatusCode, "right password, wrong organisation")
	res.Body.Close()
	md := s.do("GET", "/.well-known/oauth-authorization-server", "", nil).json(t)
	assert.Equal(t, s.base+"/oauth/token", md["token_endpoint"])

	// Prometheus metrics of all of the above, on the metrics listener only.
	assert.Equal(t, 404, s.do("GET", "/metrics", "", nil).status, "no metrics on the public address")
	require.NotEmpty(t, s.metrics, "the server printed its metrics URL")
	mr, err := http.Get(s.metrics)
	require.NoError(t, err)
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	metricsText := string(mb)
	for _, want := range []string{`gatehouse_http_requests_total{method="GET",route="/v1/customers/{id}",status="200"}`,
		`gatehouse_http_requests_total{method="GET",route="/v1/customers/{id}",status="400"}`, // not-a-uuid
		`gatehouse_http_requests_total{method="GET",route="other",status="404"}`,              // /v1/nothing
		`gatehouse_auth_failures_total{reason="missing"}`, `gatehouse_auth_failures_total{reason="revoked"}`,
		`gatehouse_rate_limited_total{window="3/m"}`, `gatehouse_webhook_deliveries_total{outcome="delivered"}`,
		"\ngatehouse_storage_waiting_writes "} {
		assert.True(t, strings.Contains(metricsText, want), "metrics lack %s", want)
	}
	for _, never := range []string{custID, "not-a-uuid", "/v1/nothing"} {
		assert.False(t, strings.Contains(metricsText, never), "%q became a label value", never)
	}

	// Graceful shutdown, then: nothing secret in any log line.
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, s.cmd.Wait())
	logs := s.logs()
	assert.Contains(t, logs, `"msg":"request"`)
	// Who made each request, by identifiers: the key's public id, the
	// token's client; anonymous requests say so.
	assert.Regexp(t, `"principal":\{"subject":"[^"]*","organisation":"[^"]+","client_id":"","key_id":"key_[^"]+","method":"api_key"`, logs)
	assert.Regexp(t, `"principal":\{"subject":"[^"]*","organisation":"[^"]+","client_id":"[^"]+","key_id":"","method":"(oauth_token|jwt)"`, logs)
	assert.Contains(t, logs, `"principal":"anonymous"`)
	for name, secretValue := range map[string]string{"test key": testKey, "live key": liveKey, "ro key": roKey, "other key": other, "access token": at,
		"client secret": s.demo["client secret"], "webhook secret": secret, "password": strings.Fields(s.demo["user"])[2], "user password": "correct horse battery"} {
		assert.NotContains(t, logs, secretValue, "a %s leaked into the logs", name)
	}
	assert.Contains(t, logs, "access_token=REDACTED")
}

// runSamples runs the curl and Python samples that /openapi.json gives
// for listing customers, with the test key in GATEHOUSE_API_KEY as the
// samples ask, and checks that /docs shows them.
func runSamples(t *testing.T, s *server, key string) {
	t.Helper()
	res, err := s.http.Get(s.base + "/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]struct {
			Samples []struct{ Lang, Source string } `json:"x-codeSamples"`
		}
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&doc))
	res.Body.Close()
	run := map[string]func(string) *exec.Cmd{
		"Shell":  func(src string) *exec.Cmd { return exec.Command("sh", "-c", src) },
		"Python": func(src string) *exec.Cmd { return exec.Command("python3", "-c", src) },
	}
	for _, sample := range doc.Paths["/v1/customers"]["get"].Samples {
		cmd, ok := run[sample.Lang]
		if !ok {
			continue
		}
		c := cmd(sample.Source)
		c.Env = append(os.Environ(), "GATEHOUSE_API_KEY="+key)
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s:\n%s\n%s", sample.Lang, sample.Source, out)
		assert.Contains(t, string(out), "200", sample.Lang)
		assert.Contains(t, string(out), `"email":"ada@example.com"`, "%s: the sandbox's customers", sample.Lang)
		delete(run, sample.Lang)
	}
	assert.Empty(t, run, "a sample of every language run")
	page := s.do("GET", "/docs", "", nil)
	require.Equal(t, 200, page.status)
	assert.Contains(t, string(page.body), "Code samples")
	assert.Contains(t, string(page.body), "$GATEHOUSE_API_KEY")
}
