package main

import (
	"encoding/json"
	"go/format"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// sampleRunners run one code sample's source, by its Lang, with env; the
// command is the interpreter the language needs.
var sampleRunners = map[string]struct {
	need string
	run  func(t *testing.T, src string) *exec.Cmd
}{
	"Shell": {"curl", func(t *testing.T, src string) *exec.Cmd { return exec.Command("sh", "-c", src) }},
	"JavaScript": {"node", func(t *testing.T, src string) *exec.Cmd {
		return exec.Command("node", "--input-type=module", "-e", src)
	}},
	"Python": {"python3", func(t *testing.T, src string) *exec.Cmd { return exec.Command("python3", "-c", src) }},
	"Go": {"go", func(t *testing.T, src string) *exec.Cmd {
		file := filepath.Join(t.TempDir(), "main.go")
		require.NoError(t, os.WriteFile(file, []byte(src), 0o600))
		return exec.Command("go", "run", file)
	}},
}

// TestCodeSamplesRun runs every language's sample of requests with and
// without a body and path parameters, against a server that records what
// arrives: each sends the method, the path with its parameters from the
// environment, the credential from GATEHOUSE_API_KEY and the body as it
// was given (text every language's quoting has to get right: quotes,
// backslashes, a shell's $ and backquote, non-ASCII, U+2028), and prints
// the status. The Go sample is gofmt-clean.
func TestCodeSamplesRun(t *testing.T) {
	type request struct{ Method, Path, Auth, ContentType, Body string }
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/missing") {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"NOT_FOUND"}}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)

	tricky := map[string]any{"notes": "it's \"quoted\" \\ back\\slash, $HOME `date` %s <b>&amp; ü 😀 \u2028 end", "amount": 4500, "tags": []string{"a'b", `c"d`}, "none": nil}
	cases := []struct {
		method, path string
		body         any
		want         string // the path that arrives
		status       string // and the status printed
	}{
		{"GET", "/v1/customers", nil, "/v1/customers", "202"},
		{"POST", "/v1/customers", tricky, "/v1/customers", "202"},
		{"PATCH", "/v1/customers/{id}", tricky, "/v1/customers/01890a5d-ac96-774b-bcce-b302099a8057", "202"},
		{"POST", "/v1/bookings/{id}/cancel", nil, "/v1/bookings/01890a5d-ac96-774b-bcce-b302099a8057/cancel", "202"},
		{"DELETE", "/v1/webhooks/{id}", nil, "/v1/webhooks/01890a5d-ac96-774b-bcce-b302099a8057", "202"},
		{"POST", "/v1/webhooks/{id}/deliveries/{delivery}/redeliver", nil, "/v1/webhooks/01890a5d-ac96-774b-bcce-b302099a8057/deliveries/d-2/redeliver", "202"},
		// An error answer is printed too, status and envelope, not raised.
		{"GET", "/v1/missing/{id}", nil, "/v1/missing/01890a5d-ac96-774b-bcce-b302099a8057", "404"},
	}
	env := append(os.Environ(), "GATEHOUSE_API_KEY=gate_test_key'\"$x", "ID=01890a5d-ac96-774b-bcce-b302099a8057", "DELIVERY=d-2")
	for lang, runner := range sampleRunners {
		t.Run(lang, func(t *testing.T) {
			if _, err := exec.LookPath(runner.need); err != nil {
				if testenv.CI() {
					t.Fatalf("CI=true: %s is needed to run the %s code samples: %v", runner.need, lang, err)
				}
				t.Skipf("%s not installed: install it to run the %s code samples", runner.need, lang)
			}
			for _, c := range cases {
				var src string
				for _, s := range codeSamples(srv.URL, c.method, c.path, c.body) {
					if s.Lang == lang {
						src = s.Source
					}
				}
				require.NotEmpty(t, src, "a %s sample of %s %s", lang, c.method, c.path)
				if lang == "Go" {
					formatted, err := format.Source([]byte(src))
					require.NoError(t, err, src)
					assert.Equal(t, string(formatted), src, "gofmt-clean")
				}
				mu.Lock()
				got = nil
				mu.Unlock()
				cmd := runner.run(t, src)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s %s %s:\n%s\n%s", lang, c.method, c.path, src, out)
				assert.Contains(t, string(out), c.status, "the sample prints the status")
				if c.status == "404" {
					assert.Contains(t, string(out), `{"error":{"code":"NOT_FOUND"}}`, "%s: and the envelope", lang)
				}
				mu.Lock()
				require.Len(t, got, 1, "%s %s %s: one request", lang, c.method, c.path)
				r := got[0]
				mu.Unlock()
				assert.Equal(t, c.method, r.Method, lang)
				assert.Equal(t, c.want, r.Path, lang)
				assert.Equal(t, "Bearer gate_test_key'\"$x", r.Auth, "%s: the credential from the environment, as it is", lang)
				if c.body == nil {
					assert.Empty(t, r.Body, lang)
					continue
				}
				assert.Equal(t, "application/json", r.ContentType, lang)
				want, _ := json.Marshal(c.body)
				assert.JSONEq(t, string(want), r.Body, "%s %s %s: the body as given", lang, c.method, c.path)
			}
		})
	}
}

// TestEveryOperationHasCodeSamples: the document gives each /v1 operation
// its samples in the four languages, naming the server's own URL.
func TestEveryOperationHasCodeSamples(t *testing.T) {
	a := &app{catalog: catalog()}
	doc := a.openAPI("https://api.example.com", a.operations())
	n := 0
	doc.operations(func(path, method string, op *openAPIOperation) {
		if !strings.HasPrefix(path, "/v1/") {
			return
		}
		n++
		var langs []string
		for _, s := range op.CodeSamples {
			langs = append(langs, s.Lang)
			assert.Contains(t, s.Source, "https://api.example.com/v1/", op.OperationID)
			assert.Contains(t, s.Source, sampleKeyEnv, op.OperationID)
		}
		assert.Equal(t, []string{"Shell", "JavaScript", "Python", "Go"}, langs, op.OperationID)
	})
	assert.Equal(t, len(a.operations()), n)
}
