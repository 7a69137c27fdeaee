package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/webhook"
)

func Example() {
	ctx := context.Background()
	store := memory.New() // or a storage/sqlstore.Store, for durability
	// Allow loopback only because the receiver below is on this machine.
	guard := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	mgr, _ := webhook.New(store, webhook.Config{Events: []string{"booking.created", "payment.completed"}, Guard: guard})
	secret := webhook.GenerateSecret() // or let Create generate one and show it once

	// The subscriber's side: verify every request before handling it.
	receiver := httptest.NewServer(webhook.Receiver{Secrets: []string{secret}}.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println("received", r.Header.Get("webhook-id") != "", string(body[:25]))
	})))
	defer receiver.Close()

	_, err := mgr.Create(ctx, webhook.SubscriptionParams{OrganisationID: "acme", URL: receiver.URL, Events: []string{"booking.*"}, Secret: secret})
	if err != nil {
		panic(err)
	}
	_ = mgr.Enqueue(ctx, webhook.Event{OrganisationID: "acme", Type: "booking.created", Data: map[string]string{"id": "b1"}})
	d, _ := webhook.NewDispatcher(store, mgr, webhook.DispatcherConfig{Guard: guard})
	n, _ := d.RunOnce(ctx) // in a server: go d.Run(ctx)
	fmt.Println("delivered", n)
	// Output:
	// received true {"type":"booking.created"
	// delivered 1
}

// A subscriber checks its endpoint with a test event, before any real one
// exists: the event goes to that subscription alone, signed as every
// delivery is.
func ExampleManager_SendTest() {
	ctx := context.Background()
	store := memory.New()
	guard := webhook.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	mgr, _ := webhook.New(store, webhook.Config{Events: []string{"booking.created"}, Guard: guard})
	secret := webhook.GenerateSecret()
	receiver := httptest.NewServer(webhook.Receiver{Secrets: []string{secret}}.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println("verified", string(body[:22]))
	})))
	defer receiver.Close()
	sub, _ := mgr.Create(ctx, webhook.SubscriptionParams{OrganisationID: "acme", URL: receiver.URL, Events: []string{"booking.created"}, Secret: secret})

	if _, err := mgr.SendTest(ctx, sub.ID); err != nil {
		panic(err)
	}
	d, _ := webhook.NewDispatcher(store, mgr, webhook.DispatcherConfig{Guard: guard})
	n, _ := d.RunOnce(ctx)
	fmt.Println("delivered", n)
	// Output:
	// verified {"type":"webhook.test"
	// delivered 1
}

// Change what a subscription receives, and enable it again after its
// endpoint was disabled.
func ExampleManager_Update() {
	ctx := context.Background()
	mgr, _ := webhook.New(memory.New(), webhook.Config{Events: []string{"booking.created", "booking.cancelled", "payment.completed"}})
	sub, _ := mgr.Create(ctx, webhook.SubscriptionParams{OrganisationID: "acme", URL: "https://93.184.215.14/hooks", Events: []string{"booking.created"}})

	sub, _ = mgr.Update(ctx, sub.ID, webhook.SubscriptionUpdate{Events: []string{"booking.*", "payment.completed"}})
	fmt.Println(sub.Events)
	off, on := false, true
	sub, _ = mgr.Update(ctx, sub.ID, webhook.SubscriptionUpdate{Enabled: &off})
	fmt.Println(sub.Enabled, sub.DisabledReason)
	sub, _ = mgr.Update(ctx, sub.ID, webhook.SubscriptionUpdate{Enabled: &on})
	fmt.Println(sub.Enabled)
	// Output:
	// [booking.* payment.completed]
	// false disabled by its owner
	// true
}
