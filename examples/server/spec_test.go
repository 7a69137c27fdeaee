package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// specChecker validates responses against the server's own
// /openapi.json with kin-openapi (the document is OpenAPI 3.0.3), and
// records which operations the suite exercised.
type specChecker struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
}

// suiteCoverage gathers, over every server the suite starts, which
// documented operations had a response validated; TestMain fails a full
// run that leaves one out.
var suiteCoverage = struct {
	sync.Mutex
	documented map[string]bool
	seen       map[string]int
}{documented: map[string]bool{}, seen: map[string]int{}}

// uncovered lists the documented operations no test exercised.
func uncovered() []string {
	suiteCoverage.Lock()
	defer suiteCoverage.Unlock()
	var out []string
	for id := range suiteCoverage.documented {
		if suiteCoverage.seen[id] == 0 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func init() {
	// The authorization pages are documented as text/html strings.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// loadSpec fetches and validates the server's OpenAPI document.
func loadSpec(t *testing.T, base string) *specChecker {
	t.Helper()
	res, err := http.Get(base + "/openapi.json")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "the server's OpenAPI document is invalid")
	require.Equal(t, base, doc.Servers[0].URL, "the document names the server's own base URL")
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	suiteCoverage.Lock()
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			suiteCoverage.documented[op.OperationID] = true
		}
	}
	suiteCoverage.Unlock()
	return &specChecker{t: t, doc: doc, router: router}
}

// check validates one response. A request that matches no documented
// operation must be answered 404 or 405 with the error envelope. It
// reports with assert only: it may run on a subtest's goroutine.
func (c *specChecker) check(req *http.Request, res *http.Response, body []byte) {
	c.t.Helper()
	ctx := context.Background()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if !strings.HasPrefix(req.URL.Path, "/v1/") {
			return
		}
		switch res.StatusCode {
		case 301, 307, 308:
			// net/http.ServeMux cleaning the path (/v1/x/../y), before any
			// handler of ours runs.
		default:
			assert.Contains(c.t, []int{404, 405}, res.StatusCode, "%s %s is not documented but answered %d", req.Method, req.URL.Path, res.StatusCode)
			var v any
			if assert.NoError(c.t, json.Unmarshal(body, &v), "%s %s: %s", req.Method, req.URL.Path, truncate(body)) {
				assert.NoError(c.t, c.doc.Components.Schemas["Error"].Value.VisitJSON(v), "%s %s: %s", req.Method, req.URL.Path, body)
			}
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	err = openapi3filter.ValidateResponse(ctx, in)
	assert.NoError(c.t, err, "%s %s → %d does not match /openapi.json: %s", req.Method, req.URL.Path, res.StatusCode, truncate(body))
	suiteCoverage.Lock()
	suiteCoverage.seen[route.Operation.OperationID]++
	suiteCoverage.Unlock()
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// validating is an http.RoundTripper that checks every response it
// carries.
type validating struct {
	c    *specChecker
	next http.RoundTripper
}

func (v validating) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	v.c.check(check, res, body)
	return res, nil
}

// client returns an http.Client whose every response is validated; it
// does not follow redirects to other hosts' callbacks (the OAuth flows
// read them from Location).
func (c *specChecker) client(jar http.CookieJar) *http.Client {
	return &http.Client{Transport: validating{c, http.DefaultTransport}, Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if u, _ := url.Parse(c.doc.Servers[0].URL); u != nil && req.URL.Host != u.Host {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

func TestOpenAPIDocumentCoversTheAPI(t *testing.T) {
	s := start(t, "sqlite:"+t.TempDir()+"/gatehouse.db")
	c := loadSpec(t, s.base)
	// Every operation names its scope in the oauth2 requirement, and the
	// scope exists in the oauth2 flows.
	flows := c.doc.Components.SecuritySchemes["oauth2"].Value.Flows
	for path, item := range c.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			want, _ := op.Extensions["x-required-scope"].(string)
			found := false
			for _, req := range *op.Security {
				if scopes, ok := req["oauth2"]; ok {
					found = true
					if want != "" {
						assert.Equal(t, []string{want}, scopes, "%s %s", method, path)
						_, known := flows.AuthorizationCode.Scopes[want]
						assert.True(t, known, "%s %s needs unknown scope %s", method, path, want)
					}
				}
			}
			assert.True(t, found, "%s %s has no oauth2 requirement", method, path)
		}
	}
	// The Postman collection holds one request per documented operation.
	res, err := http.Get(s.base + "/postman.json")
	require.NoError(t, err)
	var pm struct {
		Info struct{ Schema string }
		Item []struct {
			Name string
			Item []struct {
				Request struct {
					Method string
					URL    struct{ Raw string }
				}
			}
		}
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&pm))
	res.Body.Close()
	assert.Contains(t, pm.Info.Schema, "v2.1.0")
	var requests, ops []string
	for _, f := range pm.Item {
		for _, it := range f.Item {
			requests = append(requests, it.Request.Method+" "+it.Request.URL.Raw)
		}
	}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			seg := strings.Split(path, "/")
			for i, p := range seg {
				if strings.HasPrefix(p, "{") {
					seg[i] = ":" + strings.Trim(p, "{}")
				}
			}
			ops = append(ops, method+" {{baseUrl}}"+strings.Join(seg, "/"))
		}
	}
	slices.Sort(requests)
	slices.Sort(ops)
	assert.Equal(t, ops, requests)
}
