package webhook_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/webhook"
)

func headers(id string, ts time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func key(t *testing.T, s string) []byte {
	k, err := webhook.ParseSecret(s)
	require.NoError(t, err)
	return k
}

func TestSignaturesInteroperateWithTheOfficialLibrary(t *testing.T) {
	t.Parallel()
	secret := webhook.GenerateSecret()
	body := []byte(`{"type":"booking.created","timestamp":"2026-11-22T10:00:00Z","data":{"id":"b1"}}`)
	now := time.Now()

	// Ours verify with theirs.
	sig := webhook.Sign("msg_1", now, body, key(t, secret))
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	require.NoError(t, wh.Verify(body, headers("msg_1", now, sig)))

	// Theirs verify with ours.
	theirs, err := wh.Sign("msg_2", now, body)
	require.NoError(t, err)
	require.NoError(t, webhook.Verify(headers("msg_2", now, theirs), body, now, 0, secret))

	// During a rotation both secrets sign; a receiver holding either verifies.
	next := webhook.GenerateSecret()
	both := webhook.Sign("msg_3", now, body, key(t, next), key(t, secret))
	assert.Len(t, strings.Split(both, " "), 2)
	require.NoError(t, wh.Verify(body, headers("msg_3", now, both)), "old secret")
	wh2, _ := standardwebhooks.NewWebhook(next)
	require.NoError(t, wh2.Verify(body, headers("msg_3", now, both)), "new secret")
}

// TestTheSeedsPlainSecretIsAccepted: the seed's subscription example
// sends "secret": "webhook_secret_for_verification", a plain string. It is
// kept in the whsec_ form of its bytes, so the receiver verifies with
// that form or with its plain secret as the raw key, in the official
// library, and with Verify; a rotation to a plain secret works alike.
func TestTheSeedsPlainSecretIsAccepted(t *testing.T) {
	t.Parallel()
	const plain = "webhook_secret_for_verification"
	mgr, err := webhook.New(memory.New(), webhook.Config{Events: []string{"booking.created", "payment.completed"}})
	require.NoError(t, err)
	sub, err := mgr.Create(t.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: "https://93.184.215.14/webhooks/tiquo",
		Events: []string{"booking.created", "payment.completed"}, Secret: plain})
	require.NoError(t, err)
	assert.Equal(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte(plain)), sub.Secret)

	body := []byte(`{"type":"booking.created","timestamp":"2026-11-22T10:00:00Z","data":{"id":"b1"}}`)
	now := time.Now()
	sig := webhook.Sign("msg_1", now, body, key(t, sub.Secret))
	raw, err := standardwebhooks.NewWebhookRaw([]byte(plain))
	require.NoError(t, err)
	require.NoError(t, raw.Verify(body, headers("msg_1", now, sig)), "the plain secret as the raw key")
	std, err := standardwebhooks.NewWebhook(sub.Secret)
	require.NoError(t, err)
	require.NoError(t, std.Verify(body, headers("msg_1", now, sig)), "the whsec_ form")
	require.NoError(t, webhook.Verify(headers("msg_1", now, sig), body, now, 0, sub.Secret))
	require.NoError(t, webhook.Verify(headers("msg_1", now, sig), body, now, 0, plain), "Verify with the plain secret")
	got := 0
	h := webhook.Receiver{Secrets: []string{plain}}.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got++ }))
	req := httptest.NewRequest("POST", "/webhooks/tiquo", bytes.NewReader(body))
	for k, v := range headers("msg_1", now, sig) {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, 200, rec.Code, "a Receiver holding the plain secret: %s", rec.Body)
	assert.Equal(t, 1, got)

	rotated, err := mgr.RotateSecret(t.Context(), sub.ID, "another plain secret, long enough")
	require.NoError(t, err)
	assert.Equal(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another plain secret, long enough")), rotated.Secret)
	_, err = mgr.RotateSecret(t.Context(), sub.ID, "too short")
	assert.Equal(t, 422, apierror.From(err).Status)
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	secret := webhook.GenerateSecret()
	body := []byte(`{"a":1}`)
	now := time.Now()
	good := webhook.Sign("m", now, body, key(t, secret))
	cases := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"ok", headers("m", now, good), body, nil},
		{"missing", http.Header{}, body, webhook.ErrMissingHeaders},
		{"bad timestamp", func() http.Header { h := headers("m", now, good); h.Set(webhook.HeaderTimestamp, "soon"); return h }(), body, webhook.ErrBadTimestamp},
		{"too old", headers("m", now.Add(-6*time.Minute), webhook.Sign("m", now.Add(-6*time.Minute), body, key(t, secret))), body, webhook.ErrTooOld},
		{"too new", headers("m", now.Add(6*time.Minute), webhook.Sign("m", now.Add(6*time.Minute), body, key(t, secret))), body, webhook.ErrTooNew},
		{"tampered body", headers("m", now, good), []byte(`{"a":2}`), webhook.ErrNoValidSignature},
		{"other id", headers("n", now, good), body, webhook.ErrNoValidSignature},
		{"other secret", headers("m", now, webhook.Sign("m", now, body, key(t, webhook.GenerateSecret()))), body, webhook.ErrNoValidSignature},
		{"v2 only", headers("m", now, "v2,"+strings.TrimPrefix(good, "v1,")), body, webhook.ErrNoValidSignature},
		{"non-canonical base64 of the right bytes", headers("m", now, nonCanonical(t, good)), body, webhook.ErrNoValidSignature},
		{"lower-case header names", func() http.Header {
			return http.Header{"webhook-id": {"m"}, "webhook-timestamp": {strconv.FormatInt(now.Unix(), 10)}, "webhook-signature": {good}}
		}(), body, webhook.ErrMissingHeaders},
	}
	for _, tc := range cases {
		err := webhook.Verify(tc.h, tc.body, now, 0, secret)
		if tc.want == nil {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, tc.want, tc.name)
		}
	}
	for _, bad := range []string{"secret", "whsec_", "whsec_!!!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 10)), "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))} {
		_, err := webhook.ParseSecret(bad)
		assert.ErrorIs(t, err, webhook.ErrSecret, bad)
	}
}

// nonCanonical returns a v1 signature whose base64 decodes to the same
// bytes as sig's but sets the padding bits of its last character: a lax
// decoder accepts it, and Verify must not.
func nonCanonical(t *testing.T, sig string) string {
	t.Helper()
	enc := strings.TrimPrefix(sig, "v1,")
	require.Len(t, enc, 44) // 32 bytes: 43 characters carry them, 2 bits of the 43rd are padding
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, enc[42])
	other := enc[:42] + string(alphabet[i^1]) + enc[43:]
	a, err := base64.StdEncoding.DecodeString(enc)
	require.NoError(t, err)
	b, err := base64.StdEncoding.DecodeString(other)
	require.NoError(t, err)
	require.Equal(t, a, b, "the variant decodes to the same bytes")
	return "v1," + other
}

func TestReceiver(t *testing.T) {
	t.Parallel()
	old, cur := webhook.GenerateSecret(), webhook.GenerateSecret()
	var got string
	h := webhook.Receiver{Secrets: []string{cur, old}}.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		got = string(b[:n])
	}))
	body := `{"type":"payment.completed"}`
	now := time.Now()
	for _, tc := range []struct {
		sig    string
		status int
	}{{webhook.Sign("m", now, []byte(body), key(t, old)), 200}, {webhook.Sign("m", now, []byte(body), key(t, webhook.GenerateSecret())), 401}} {
		req := httptest.NewRequest("POST", "/hooks", strings.NewReader(body))
		req.Header = headers("m", now, tc.sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tc.status, rec.Code)
		if tc.status == 401 {
			assert.Contains(t, rec.Body.String(), "no signature matches")
		}
	}
	assert.Equal(t, body, got, "the body reaches the handler intact")
}

func TestReceiverMisconfiguredIs500(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	secret := webhook.GenerateSecret()
	body := `{"type":"payment.completed"}`
	now := time.Now()
	for _, secrets := range [][]string{nil, {"not-a-secret"}, {secret, "whsec_short"}} {
		h := webhook.Receiver{Secrets: secrets, Logger: logger}.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			t.Error("a misconfigured receiver passed a request on")
		}))
		req := httptest.NewRequest("POST", "/hooks", strings.NewReader(body))
		req.Header = headers("m", now, webhook.Sign("m", now, []byte(body), key(t, secret)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, 500, rec.Code, secrets)
		assert.NotContains(t, rec.Body.String(), "whsec_", "the sender is not told how secrets look")
		assert.NotContains(t, rec.Body.String(), "secret")
	}
	assert.Contains(t, logs.String(), "Receiver has no secrets")
	assert.Contains(t, logs.String(), "Receiver secret 1")
}

// TestSignaturesVerifyWithNode runs the npm standardwebhooks package under
// Node against a signature of ours. .ci/run installs the package in
// .cache/npm; set GATEHOUSE_NODE_MODULES to use another copy.
func TestSignaturesVerifyWithNode(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	modules := os.Getenv("GATEHOUSE_NODE_MODULES")
	if modules == "" {
		_, file, _, _ := runtime.Caller(0)
		modules = filepath.Join(filepath.Dir(file), "..", ".cache", "npm", "node_modules")
	}
	if _, statErr := os.Stat(filepath.Join(modules, "standardwebhooks")); err != nil || statErr != nil {
		if testenv.CI() {
			t.Fatalf("node and the npm standardwebhooks package are required when CI=true (node: %v, package: %v)", err, statErr)
		}
		t.Skip("needs node and `npm install --prefix .cache/npm standardwebhooks`")
	}
	secret := webhook.GenerateSecret()
	body := `{"type":"booking.created","data":{"id":"b1"}}`
	now := time.Now()
	sig := webhook.Sign("msg_node", now, []byte(body), key(t, secret))
	script := `const { Webhook } = require("standardwebhooks");
const [secret, id, ts, sig, body] = process.argv.slice(1);
new Webhook(secret).verify(body, {"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig});
const bad = (() => { try { new Webhook(secret).verify(body + " ", {"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig}); return false } catch (e) { return true } })();
if (!bad) { throw new Error("tampered body accepted") }
console.log("verified");`
	cmd := exec.CommandContext(t.Context(), node, "-e", script, secret, "msg_node", strconv.FormatInt(now.Unix(), 10), sig, body)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "verified", strings.TrimSpace(string(out)))
}

// FuzzVerify feeds arbitrary webhook-id, webhook-timestamp and
// webhook-signature headers and bodies to Verify: it never panics, and it
// accepts only what carries a valid signature of the body.
func FuzzVerify(f *testing.F) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, _ := webhook.ParseSecret(secret)
	now := time.Unix(1795340000, 0)
	f.Add("msg_1", "1795340000", webhook.Sign("msg_1", now, []byte(`{}`), key), []byte(`{}`))
	f.Add("msg_1", "1795340000", "v1,AAAA v2,BBBB", []byte(`{}`))
	f.Add("", "", "", []byte(nil))
	f.Add("m", "-99999999999999999999", "v1,", []byte("x"))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		if err := webhook.Verify(h, body, now, 0, secret); err == nil {
			tsv, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("accepted a bad timestamp %q", ts)
			}
			want, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(webhook.Sign(id, time.Unix(tsv, 0), body, key), "v1,"))
			ok := false
			for part := range strings.SplitSeq(sig, " ") {
				if enc, found := strings.CutPrefix(part, "v1,"); found {
					got, derr := base64.StdEncoding.DecodeString(enc)
					ok = ok || (derr == nil && string(got) == string(want))
				}
			}
			if !ok {
				t.Fatalf("accepted an unsigned message: id=%q ts=%q sig=%q", id, ts, sig)
			}
		}
	})
}
