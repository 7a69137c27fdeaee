package storage

import (
	"context"
	"time"
)

// Subscription is a webhook endpoint: where to send which events, signed
// with which secret.
type Subscription struct {
	ID             string
	OrganisationID string
	// Environment is "live" or "test": a subscription receives events of
	// its own environment only.
	Environment string
	URL         string
	// Events are exact event types or wildcards ("booking.*", "*").
	Events []string
	// Secret is the signing secret (whsec_…). SQL adapters encrypt it at
	// rest when configured with a key.
	Secret string
	// PreviousSecret keeps signing beside Secret until
	// PreviousSecretExpiresAt, after a rotation.
	PreviousSecret          string
	PreviousSecretExpiresAt time.Time
	Enabled                 bool
	DisabledReason          string
	// FailingSince is when deliveries to this endpoint started failing
	// without a success since; zero while it is healthy.
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Version counts the changes UpdateSubscription made: an update names
	// the version it read (see APIKey.Version).
	Version int64
}

// Event is something that happened, to be delivered to the matching
// subscriptions.
type Event struct {
	ID             string
	OrganisationID string
	Environment    string
	Type           string
	// Payload is the JSON body sent to receivers.
	Payload   []byte
	CreatedAt time.Time
}

// DeliveryStatus is the state of one delivery.
type DeliveryStatus string

// Delivery states. A pending delivery is sent when NextAttemptAt is due;
// delivered and failed are final until a redelivery makes it pending.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Delivery is one event on its way to one subscription.
type Delivery struct {
	ID             string
	EventID        string
	SubscriptionID string
	OrganisationID string
	EventType      string
	Payload        []byte
	Status         DeliveryStatus
	// Attempts counts the attempts made so far.
	Attempts      int
	NextAttemptAt time.Time
	// LeaseID identifies the current claim; it fences CompleteDelivery
	// and ReleaseDelivery. Empty when not claimed.
	LeaseID        string
	LeaseOwner     string
	LeaseExpiresAt time.Time
	LastStatusCode int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Attempt is the record of one try to deliver.
type Attempt struct {
	ID           string
	DeliveryID   string
	At           time.Time
	Duration     time.Duration
	StatusCode   int
	ResponseBody string
	Error        string
}

// DeliveryResult reports an attempt and what happens next: Status
// delivered or failed ends the delivery; pending retries it at
// NextAttemptAt.
type DeliveryResult struct {
	DeliveryID    string
	LeaseID       string
	Attempt       Attempt
	Status        DeliveryStatus
	NextAttemptAt time.Time
}

// Subscriptions stores webhook subscriptions.
type Subscriptions interface {
	// CreateSubscription stores s. ErrConflict when the id exists.
	CreateSubscription(ctx context.Context, s *Subscription) error
	// GetSubscription returns the subscription with id, or ErrNotFound.
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// ListSubscriptions returns every subscription of an organisation,
	// oldest first.
	ListSubscriptions(ctx context.Context, organisationID string) ([]*Subscription, error)
	// UpdateSubscription replaces every field but ID, OrganisationID and
	// CreatedAt, if Version is still s.Version, atomically, and
	// increments Version (s's too). ErrConflict when the subscription
	// changed since s was read; ErrNotFound when it does not exist.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	// DeleteSubscription removes a subscription and its pending
	// deliveries. ErrNotFound when it does not exist.
	DeleteSubscription(ctx context.Context, id string) error
}

// Outbox is the durable queue of webhook deliveries.
type Outbox interface {
	// Enqueue stores the event and one pending delivery, due at once, per
	// subscription id. ErrConflict when the event id exists. With a
	// storage.Tx context it joins the transaction.
	Enqueue(ctx context.Context, e *Event, subscriptionIDs []string) error
	// ClaimDeliveries leases up to limit pending deliveries that are due at
	// now and not leased (or whose lease expired) to owner until
	// now+lease, and returns them with a fresh LeaseID each, oldest due
	// first. It passes over the deliveries of the subscriptions in skip
	// (endpoints the caller has at their concurrency limit), so that their
	// backlog does not hold up other endpoints' deliveries. Concurrent
	// claims never return the same delivery while its lease runs.
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, skip []string) ([]*Delivery, error)
	// CompleteDelivery records the attempt and applies the result, only if
	// r.LeaseID still holds the delivery; otherwise ErrLeaseLost and
	// nothing changes. It clears the lease and adds one to Attempts.
	CompleteDelivery(ctx context.Context, r DeliveryResult) error
	// ReleaseDelivery gives a claimed delivery back unattempted (at
	// shutdown). ErrLeaseLost when leaseID no longer holds it.
	ReleaseDelivery(ctx context.Context, id, leaseID string) error
	// GetDelivery returns the delivery with id, or ErrNotFound.
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries returns a subscription's deliveries, newest first.
	ListDeliveries(ctx context.Context, subscriptionID string, p Page) ([]*Delivery, error)
	// ListAttempts returns a delivery's attempts, oldest first.
	ListAttempts(ctx context.Context, deliveryID string) ([]*Attempt, error)
	// Redeliver makes a delivery pending again, due at now, whatever its
	// state, and clears its lease. ErrNotFound when it does not exist.
	Redeliver(ctx context.Context, id string, now time.Time) error
	// RedeliverFailed makes every failed delivery of a subscription created
	// at or after since pending again, due at now, and returns how many.
	RedeliverFailed(ctx context.Context, subscriptionID string, since, now time.Time) (int, error)
}
