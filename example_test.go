package gatehouse_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// A Chain tries each Authenticator in turn; here a single one that knows one
// static token. The apikey and oauth packages provide real authenticators.
func ExampleChain() {
	static := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		tok, err := gatehouse.BearerToken(r, false)
		if err != nil {
			return nil, err
		}
		if tok != "s3cret-token" {
			return nil, apierror.InvalidToken("unknown token")
		}
		return &gatehouse.Principal{Subject: "ada", Organisation: "demo", Scopes: []string{"bookings:read"}}, nil
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, static)
	if err != nil {
		panic(err)
	}
	me := chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello", gatehouse.FromContext(r.Context()).Subject)
	}))

	for _, auth := range []string{"Bearer s3cret-token", ""} {
		req := httptest.NewRequest("GET", "/v1/contacts/me", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		me.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 hello ada
	// 401 {"error":{"code":"UNAUTHORIZED","message":"Authentication is required: send an API key or access token as Authorization: Bearer <credential>"}}
}

// Behind apierror.RequestID the chain keeps the principal in the request's
// own context, so an access log wrapped around the chain (inside RequestID)
// learns who made the request once the handler has returned.
func ExampleChain_accessLog() {
	static := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		if tok, err := gatehouse.BearerToken(r, false); err != nil || tok != "s3cret-token" {
			return nil, gatehouse.ErrNoCredentials
		}
		return &gatehouse.Principal{Subject: "ada", KeyID: "key_1"}, nil
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, static)
	if err != nil {
		panic(err)
	}
	accessLog := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if p := gatehouse.FromContext(r.Context()); p != nil {
				fmt.Println("request by", p.Subject, "with", p.KeyID)
			}
		})
	}
	api := chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h := apierror.RequestID(accessLog(api))

	req := httptest.NewRequest("GET", "/v1/contacts/me", nil)
	req.Header.Set("Authorization", "Bearer s3cret-token")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// request by ada with key_1
}
