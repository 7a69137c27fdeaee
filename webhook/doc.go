// Package webhook sends signed webhooks with durable, at-least-once
// delivery, and verifies them for services that receive them.
//
// # Subscriptions and events
//
// A subscription is the seed's {"url", "events", "secret"} with an owner
// (organisation), an environment and an enabled flag. Events are
// dot-separated types from the application's catalog ([Config].Events);
// subscriptions name types or wildcards ("booking.*", "*"). [Manager.Create]
// refuses unknown types, malformed or forbidden URLs and secrets that are
// neither of the whsec_ form nor 24 to 64 characters of text (a plain
// secret such as the seed's is kept in the whsec_ form of its bytes:
// [NormalizeSecret]) with a 422 naming the field, and generates a secret
// when none is given.
//
// # Signing
//
// The Standard Webhooks specification: headers webhook-id (the event id,
// stable across retries: the receiver's idempotency key),
// webhook-timestamp and webhook-signature ("v1,<base64 HMAC-SHA256 of
// id.timestamp.body>"). During a secret rotation both secrets sign, space
// separated. [Verify] and [Receiver] check them on the receiving side.
//
// # Delivery
//
// [Manager.Enqueue] (or EnqueueTx, inside the application's own SQL
// transaction) writes the event and its deliveries to the outbox; an
// event whose body is over Config.MaxPayload (1 MiB) is refused. A
// [Dispatcher] claims due deliveries with a lease and sends them with a
// bounded worker pool: at least once, in no particular order. One
// endpoint has at most DispatcherConfig.PerEndpoint deliveries in flight
// (half the workers by default): the claim passes over an endpoint at
// that limit, so a receiver that hangs until the timeout, with a backlog,
// delays only its own deliveries. 2xx is
// success; anything else, or a timeout, is retried after 0, 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h and 10 h (±20 %; a longer Retry-After is honoured
// up to the longest delay), then marked failed. 410 Gone, or failing
// without a success for DisableAfter (5 days), disables the subscription
// and emits webhook.disabled. Every attempt is recorded with its time,
// duration, status, the first 4 KiB of the response and the error.
// Finishing a delivery is fenced by its lease, so a dispatcher whose lease
// was taken over cannot overwrite the new owner's result.
// [Manager.Redeliver] and [Manager.RecoverFailed] send deliveries again by
// hand; [Manager.SendTest] sends a webhook.test event to one subscription,
// for its owner to check the endpoint before any real event;
// [Manager.Update] enables a disabled subscription again once its
// endpoint is mended, and changes its URL and events.
//
// # SSRF
//
// Deliveries never connect to loopback, private, link-local (cloud
// metadata), CGNAT, unspecified, multicast or reserved addresses: the
// check runs on the address actually dialed, so DNS rebinding cannot get
// round it. Redirects are not followed and proxy settings are ignored.
// [Guard].Allow opens CIDRs for tests and on-premise receivers.
package webhook
