package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// cors lets browser applications on the origins it allows call the API
// and the token endpoint: an implicit-grant or PKCE application runs on
// its own origin and sends its token as Authorization: Bearer, never a
// cookie, so no credentials mode is offered. Allowed origins get
// Access-Control-Allow-Origin and the headers Gatehouse sets, exposed;
// preflights are answered before authentication, which browsers do not
// send on them. The zero value (no origins) sends no CORS headers.
type cors struct {
	any     bool
	origins map[string]bool
	expose  string
}

// corsAllowHeaders are the request headers a browser may send.
const corsAllowHeaders = "Authorization, Content-Type, Accept, " + apierror.HeaderRequestID

// parseCORS reads -cors-origins: "" (none), "*" (any), or a comma-separated
// list of origins such as https://app.example.com or http://localhost:3000.
func parseCORS(s string) (cors, error) {
	c := cors{origins: map[string]bool{}}
	expose := append([]string{apierror.HeaderRequestID, "WWW-Authenticate"}, ratelimit.ExposedHeaders()...)
	c.expose = strings.Join(append(expose, paginate.ExposedHeaders()...), ", ")
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "*":
			c.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return cors{}, fmt.Errorf("-cors-origins: %q is not an origin such as https://app.example.com", o)
		}
		c.origins[u.Scheme+"://"+strings.ToLower(u.Host)] = true
	}
	return c, nil
}

func (c cors) enabled() bool { return c.any || len(c.origins) > 0 }

func (c cors) allows(origin string) bool {
	return origin != "" && (c.any || c.origins[origin])
}

// handler wraps next, which serves the methods in methods.
func (c cors) handler(methods []string, next http.Handler) http.Handler {
	if !c.enabled() {
		return next
	}
	allowMethods := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		if !c.any {
			h.Add("Vary", "Origin") // the answer depends on it
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !c.allows(origin) {
			if preflight {
				w.WriteHeader(http.StatusNoContent) // no CORS headers: the browser refuses
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if c.any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if preflight {
			if m := r.Header.Get("Access-Control-Request-Method"); slices.Contains(methods, m) {
				h.Set("Access-Control-Allow-Methods", allowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", "7200")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", c.expose)
		next.ServeHTTP(w, r)
	})
}
