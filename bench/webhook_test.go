package bench

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gatehouse-go/gatehouse/webhook"
)

var payload = []byte(`{"type":"booking.created","timestamp":"2026-11-22T10:00:00Z","data":{"id":"0194a3b2-7c1d-7000-8000-000000000001","customer_id":"0194a3b2-7c1d-7000-8000-000000000002","service":"Haircut","starts_at":"2026-12-01T10:00:00Z","ends_at":"2026-12-01T11:00:00Z","status":"confirmed","notes":null}}`)

// BenchmarkWebhookSign and BenchmarkWebhookVerify: Gatehouse beside the
// official Standard Webhooks Go library, same secret and body.
func BenchmarkWebhookSign(b *testing.B) {
	secret := webhook.GenerateSecret()
	key, _ := webhook.ParseSecret(secret)
	now := time.Now()
	b.Run("gatehouse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = webhook.Sign("msg_1", now, payload, key)
		}
	})
	b.Run("standardwebhooks", func(b *testing.B) {
		wh, _ := standardwebhooks.NewWebhook(secret)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = wh.Sign("msg_1", now, payload)
		}
	})
}

func BenchmarkWebhookVerify(b *testing.B) {
	secret := webhook.GenerateSecret()
	key, _ := webhook.ParseSecret(secret)
	now := time.Now()
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", webhook.Sign("msg_1", now, payload, key))
	b.Run("gatehouse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := webhook.Verify(h, payload, now, 0, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("standardwebhooks", func(b *testing.B) {
		wh, _ := standardwebhooks.NewWebhook(secret)
		b.ReportAllocs()
		for b.Loop() {
			if err := wh.Verify(payload, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
