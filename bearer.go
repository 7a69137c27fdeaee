package gatehouse

import (
	"net/http"
	"strings"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// QueryAccessToken is the query parameter that carries a bearer token when a
// resource server allows it (RFC 6750 §2.3; TidyHQ's API accepts it).
const QueryAccessToken = "access_token"

// MaxCredentialLength bounds the length of a bearer credential. Longer
// values are refused before any parsing or lookup.
const MaxCredentialLength = 4096

// ParseBearer parses the value of an Authorization header with the Bearer
// scheme (RFC 6750 §2.1). The scheme is case-insensitive and separated from
// the credential by one or more spaces; the credential must be token68
// syntax (ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "=" padding).
//
// It returns [ErrNoCredentials] for an empty header or another scheme (Basic,
// Digest …), and a 400 INVALID_REQUEST *apierror.Error for a Bearer header
// that is malformed.
func ParseBearer(header string) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	scheme, rest, ok := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoCredentials
	}
	if !ok {
		return "", malformed("the Bearer scheme needs a credential after it")
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" {
		return "", malformed("the Bearer scheme needs a credential after it")
	}
	if len(token) > MaxCredentialLength {
		return "", malformed("the credential is too long")
	}
	if !isToken68(token) {
		return "", malformed("the credential contains characters a bearer token cannot have")
	}
	return token, nil
}

// BearerToken returns the bearer credential of r. It reads the
// Authorization header, and also the access_token query parameter when
// allowQuery is true. It returns [ErrNoCredentials] when neither is there,
// and a 400 INVALID_REQUEST when the request is ambiguous (several
// Authorization headers, several access_token parameters, or both a header
// and a parameter; RFC 6750 §2 allows one method per request) or malformed.
func BearerToken(r *http.Request, allowQuery bool) (string, error) {
	headers := r.Header["Authorization"] // canonical: no re-canonicalising on every request
	if len(headers) > 1 {
		return "", malformed("send one Authorization header")
	}
	header := ""
	if len(headers) == 1 {
		header = headers[0]
	}
	token, err := ParseBearer(header)
	if !allowQuery {
		return token, err
	}
	if err != nil && err != ErrNoCredentials { //nolint:errorlint // our own sentinel, never wrapped here
		return "", err
	}
	// Avoid parsing the query string on the hot path when there is none.
	if r.URL.RawQuery == "" || !strings.Contains(r.URL.RawQuery, QueryAccessToken) {
		return token, err
	}
	values := r.URL.Query()[QueryAccessToken]
	switch {
	case len(values) == 0:
		return token, err
	case len(values) > 1:
		return "", apierror.InvalidParam(QueryAccessToken, "send one access_token parameter")
	case token != "":
		return "", apierror.InvalidParam(QueryAccessToken, "send the token either in the Authorization header or as access_token, not both")
	}
	q := values[0]
	if q == "" || len(q) > MaxCredentialLength || !isToken68(q) {
		return "", apierror.InvalidParam(QueryAccessToken, "is not a well-formed token")
	}
	return q, nil
}

func malformed(issue string) error {
	return apierror.InvalidRequest("The Authorization header is malformed", "Authorization", issue).
		WithHeader("WWW-Authenticate", `Bearer realm="api", error="invalid_request"`)
}

// token68Chars is a read-only lookup table of token68's characters before
// the padding: one load per byte where a chain of comparisons took ten.
var token68Chars = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") {
		t[c] = true
	}
	return t
}()

func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
