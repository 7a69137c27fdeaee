package apierror_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apierror"
)

func decodeAny(body string) (any, error) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	var v any
	err := apierror.Decoder{AllowUnknownFields: true}.Decode(nil, r, &v)
	return v, err
}

// TestDecodeRefusesTextNoStoreHolds: encoding/json would turn bytes that
// are not UTF-8 and unpaired surrogate escapes into U+FFFD silently, and
// keep \u0000 (which PostgreSQL's text refuses, a 500 later); the decoder
// answers each with a 400 naming the member.
func TestDecodeRefusesTextNoStoreHolds(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, issue string
	}{
		{"NUL escape", `{"name":"a\u0000b"}`, "name", "must not contain the character U+0000"},
		{"bytes not UTF-8", "{\"name\":\"a\xffb\"}", "name", "is not valid UTF-8"},
		{"truncated UTF-8", "{\"name\":\"caf\xc3\"}", "name", "is not valid UTF-8"},
		{"lone high surrogate", `{"name":"\ud83dx"}`, "name", `contains an unpaired UTF-16 surrogate escape (\ud83d)`},
		{"high surrogate at the end", `{"name":"\uD83D"}`, "name", `contains an unpaired UTF-16 surrogate escape (\uD83D)`},
		{"lone low surrogate", `{"name":"\ude00"}`, "name", `contains an unpaired UTF-16 surrogate escape (\ude00)`},
		{"two high surrogates", `{"name":"\ud83d\ud83d"}`, "name", `contains an unpaired UTF-16 surrogate escape (\ud83d)`},
		{"nested in an array", `{"a":{"b":["fine","\u0000"]},"c":1}`, "a.b", "must not contain the character U+0000"},
		{"in a member name", `{"ok":1,"k\u0000":2}`, "k\x00", "must not contain the character U+0000"},
		{"top-level string", `"\u0000"`, "body", "must not contain the character U+0000"},
		{"top-level array", `["x","\udfff"]`, "body", `contains an unpaired UTF-16 surrogate escape (\udfff)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAny(tc.body)
			e := apierror.From(err)
			require.NotNil(t, err)
			assert.Equal(t, 400, e.Status)
			assert.Equal(t, "INVALID_REQUEST", e.Code)
			assert.Equal(t, "The request body contains text that is not allowed", e.Message)
			assert.Equal(t, apierror.FieldIssue{Field: tc.field, Issue: tc.issue}, e.Details)
		})
	}
	for _, body := range []string{
		`{"name":"plain"}`,
		`{"name":"café ☕ 😀"}`,
		`{"name":"\ud83d\ude00 \u00e9 \ufffd"}`, // a pair, and U+FFFD sent as such
		`{"name":"\\u0000"}`,                    // an escaped backslash: the text \u0000
		`{"name":"\\\"\u0041"}`,
		`{"a":[1,{"b":null}],"c":"\u2028"}`,
		"{\"name\":\"\xef\xbf\xbd\"}", // U+FFFD as UTF-8
	} {
		_, err := decodeAny(body)
		assert.NoError(t, err, body)
	}
}

// FuzzDecodeText: the decoder refuses a body exactly when its decoded
// value would differ from what the client sent, or hold U+0000: when it
// accepts one, no decoded string holds U+0000, nor U+FFFD unless the body
// sent it; when it refuses one for its text, some decoded string holds
// one of them.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, "{\"a\":\"\xff\"}", `["\ud800\udc00","\udc00"]`, `{"a\\":"\\u0000"}`, `"\ufffd"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) && !json.Valid(bytes.ToValidUTF8(body, []byte("\ufffd"))) {
			return
		}
		var plain any
		if json.Unmarshal(body, &plain) != nil {
			return
		}
		nul, fffd := false, false
		walkStrings(plain, func(s string) {
			nul = nul || strings.ContainsRune(s, 0)
			fffd = fffd || strings.ContainsRune(s, '\ufffd')
		})
		_, err := decodeAny(string(body))
		sentFFFD := bytes.Contains(body, []byte("\ufffd")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		if err == nil {
			if nul || (fffd && !sentFFFD) {
				t.Fatalf("accepted %q, which decodes with U+0000 or an unsent U+FFFD", body)
			}
			return
		}
		if e := apierror.From(err); e.Message == "The request body contains text that is not allowed" && !nul && !fffd {
			t.Fatalf("refused %q (%v), whose decoded strings hold neither U+0000 nor U+FFFD", body, e.Details)
		}
	})
}

// walkStrings calls f with every string and member name in v.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, x := range v {
			walkStrings(x, f)
		}
	case map[string]any:
		for k, x := range v {
			f(k)
			walkStrings(x, f)
		}
	}
}

// TestDecodeNamesWhatIsWrongWithANumber: a number that does not fit its
// field is a 400 saying why, not "must be a number, not number 1e400".
func TestDecodeNamesWhatIsWrongWithANumber(t *testing.T) {
	type body struct {
		N int     `json:"n"`
		U uint8   `json:"u"`
		F float32 `json:"f"`
	}
	for _, tc := range []struct{ body, field, issue string }{
		{`{"n":1.5}`, "n", "must be a whole number, not 1.5"},
		{`{"n":1e3}`, "n", "must be a whole number, not 1e3"},
		{`{"n":99999999999999999999}`, "n", "is out of range: 99999999999999999999"},
		{`{"u":256}`, "u", "is out of range: 256"},
		{`{"u":-1}`, "u", "is out of range: -1"},
		{`{"f":1e400}`, "f", "is out of range: 1e400"},
		{`{"n":"12"}`, "n", "must be a number, not string"},
		{`{"f":true}`, "f", "must be a number, not bool"},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		var b body
		e := apierror.From(apierror.DecodeJSON(nil, r, &b))
		assert.Equal(t, 400, e.Status, tc.body)
		assert.Equal(t, apierror.FieldIssue{Field: tc.field, Issue: tc.issue}, e.Details, tc.body)
	}
}
