package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/storage"
)

// Store is what webhooks need from storage.
type Store interface {
	storage.Subscriptions
	storage.Outbox
}

// TxEnqueuer is implemented by stores that can enqueue inside an
// application's own SQL transaction (storage/sqlstore does).
type TxEnqueuer interface {
	EnqueueTx(ctx context.Context, tx *sql.Tx, e *storage.Event, subscriptionIDs []string) error
}

// EventDisabled is emitted to an organisation's other subscriptions when
// an endpoint is disabled (410 Gone, or failing for too long).
const EventDisabled = "webhook.disabled"

// Config holds the settings of a [Manager].
type Config struct {
	// Events is the application's catalog of event types
	// ("booking.created", …). Subscriptions may name these, or wildcards
	// over them ("booking.*", "*"). Required.
	Events []string
	// Guard decides which addresses webhook URLs may reach.
	Guard Guard
	// RotationOverlap is how long the previous secret keeps signing after
	// a rotation. Default: 24 h.
	RotationOverlap time.Duration
	// MaxPayload bounds an event's JSON body (type, timestamp and data):
	// a larger event is refused at Enqueue, before anything is stored,
	// rather than stored once per subscription and sent to each.
	// Default: 1 MiB.
	MaxPayload int
	// Logger receives subscription changes. Default: silent.
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Manager registers subscriptions and enqueues events. Safe for
// concurrent use.
type Manager struct {
	store Store
	cfg   Config
	log   *slog.Logger
}

// New returns a Manager over store.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("webhook: New needs a store")
	}
	if len(cfg.Events) == 0 {
		return nil, errors.New("webhook: Config.Events must list the event types")
	}
	for _, e := range cfg.Events {
		if !validType(e) {
			return nil, fmt.Errorf("webhook: event type %q must be dot-separated lowercase words", e)
		}
	}
	if !slices.Contains(cfg.Events, EventDisabled) {
		cfg.Events = append(slices.Clone(cfg.Events), EventDisabled)
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 1 << 20
	}
	if cfg.RotationOverlap <= 0 {
		cfg.RotationOverlap = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{store: store, cfg: cfg, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

func validType(t string) bool {
	if t == "" || len(t) > 100 || strings.HasPrefix(t, ".") || strings.HasSuffix(t, ".") || strings.Contains(t, "..") {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Matches reports whether a subscription pattern ("booking.created",
// "booking.*", "*") covers an event type.
func Matches(pattern, eventType string) bool {
	if pattern == "*" || pattern == eventType {
		return true
	}
	if p, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(eventType, p+".")
	}
	return false
}

// SubscriptionParams describes a subscription: the seed's
// {"url", "events", "secret"}, plus its owner.
type SubscriptionParams struct {
	OrganisationID string
	Environment    string // "live" or "test"
	URL            string
	Events         []string
	// Secret is optional: one is generated when empty.
	Secret string
}

// Create validates and stores a subscription and returns it with its
// secret (generated when none was given: show it once). Invalid fields are
// a 422 naming each one.
func (m *Manager) Create(ctx context.Context, p SubscriptionParams) (*storage.Subscription, error) {
	var v apierror.Validation
	if p.Environment == "" {
		p.Environment = "live"
	}
	v.Check(p.Environment == "live" || p.Environment == "test", "environment", "must be live or test")
	m.checkURL(ctx, &v, p.URL)
	m.checkEvents(&v, p.Events)
	secret, err := chosenSecret(p.Secret)
	if err != nil {
		v.Add("secret", SecretIssue)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := m.cfg.Now().UTC()
	s := &storage.Subscription{ID: storage.NewID(), OrganisationID: p.OrganisationID, Environment: p.Environment, URL: p.URL,
		Events: eventSet(p.Events), Secret: secret, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := m.store.CreateSubscription(ctx, s); err != nil {
		return nil, fmt.Errorf("webhook: create subscription: %w", err)
	}
	m.log.Info("webhook subscription created", "subscription_id", s.ID, "organisation", s.OrganisationID)
	return s, nil
}

func (m *Manager) checkURL(ctx context.Context, v *apierror.Validation, u string) {
	if !storage.ValidText(u) {
		v.Add("url", storage.TextIssue)
	} else if err := m.cfg.Guard.CheckURL(ctx, u); err != nil {
		v.Add("url", strings.TrimPrefix(err.Error(), "webhook: "))
	}
}

func (m *Manager) checkEvents(v *apierror.Validation, events []string) {
	if v.Check(len(events) > 0 && len(events) <= 100, "events", "must list 1 to 100 event types") {
		for _, e := range events {
			if !m.knownPattern(e) {
				v.Add("events", fmt.Sprintf("%q is not a known event type or wildcard; the types are %s", e, strings.Join(m.cfg.Events, ", ")))
			}
		}
	}
}

func eventSet(events []string) []string { return slices.Compact(slices.Sorted(slices.Values(events))) }

// DisabledByOwner is the DisabledReason of a subscription its owner
// disabled (SubscriptionUpdate.Enabled false).
const DisabledByOwner = "disabled by its owner"

// SubscriptionUpdate changes a subscription; nil fields are left as they
// are.
type SubscriptionUpdate struct {
	URL    *string
	Events []string
	// Enabled true enables a disabled subscription again, its failure
	// record cleared (the DisableAfter count starts afresh; an enabled
	// one keeps its record); false disables it, with the reason
	// DisabledByOwner.
	Enabled *bool
}

// Update changes a subscription's URL, events or state, checked as
// Create checks them: invalid fields are a 422 naming each one. A
// subscription the dispatcher disabled (410 Gone, or failing for
// DisableAfter) is enabled again this way once its endpoint is mended.
// Events enqueued while it was disabled were not queued for it;
// deliveries that failed are sent again with RecoverFailed. Its secret
// changes with RotateSecret. A missing subscription wraps
// storage.ErrNotFound.
func (m *Manager) Update(ctx context.Context, id string, u SubscriptionUpdate) (*storage.Subscription, error) {
	var v apierror.Validation
	if u.URL != nil {
		m.checkURL(ctx, &v, *u.URL)
	}
	if u.Events != nil {
		m.checkEvents(&v, u.Events)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	s, err := changeSubscription(ctx, m.store, id, func(s *storage.Subscription) bool {
		if u.URL != nil {
			s.URL = *u.URL
		}
		if u.Events != nil {
			s.Events = eventSet(u.Events)
		}
		switch {
		case u.Enabled == nil || *u.Enabled == s.Enabled:
			// An enabled subscription that is failing keeps its failure
			// record: enabling it again does not put off its disabling.
		case *u.Enabled:
			s.Enabled, s.DisabledReason, s.FailingSince = true, "", time.Time{}
		default:
			s.Enabled, s.DisabledReason = false, DisabledByOwner
		}
		s.UpdatedAt = m.cfg.Now().UTC()
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: update subscription: %w", err)
	}
	m.log.Info("webhook subscription updated", "subscription_id", s.ID, "enabled", s.Enabled)
	return s, nil
}

// chosenSecret is the whsec_ form of the secret a subscriber chose, or a
// new one when it chose none.
func chosenSecret(s string) (string, error) {
	if s == "" {
		return GenerateSecret(), nil
	}
	return NormalizeSecret(s)
}

// EventTypes returns the event types subscriptions may name, as
// Config.Events lists them, with webhook.disabled: for an API that lets
// subscribers discover them.
func (m *Manager) EventTypes() []string { return slices.Clone(m.cfg.Events) }

func (m *Manager) knownPattern(p string) bool {
	for _, e := range m.cfg.Events {
		if Matches(p, e) {
			return true
		}
	}
	return false
}

// RotateSecret gives a subscription a new secret (generated when empty);
// the old one keeps signing beside it for Config.RotationOverlap.
func (m *Manager) RotateSecret(ctx context.Context, id, secret string) (*storage.Subscription, error) {
	secret, err := chosenSecret(secret)
	if err != nil {
		return nil, apierror.Unprocessable(apierror.FieldIssue{Field: "secret", Issue: SecretIssue})
	}
	s, err := changeSubscription(ctx, m.store, id, func(s *storage.Subscription) bool {
		now := m.cfg.Now().UTC()
		s.PreviousSecret, s.PreviousSecretExpiresAt, s.Secret, s.UpdatedAt = s.Secret, now.Add(m.cfg.RotationOverlap), secret, now
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: rotate secret: %w", err)
	}
	return s, nil
}

// changeSubscription applies change to the subscription with id as it is
// stored and writes it back, conditionally on the version it read
// (storage.Subscriptions.UpdateSubscription): when another change came
// between (a new secret, a failure mark, a disabling, from any
// instance), it reads the subscription again and applies change to that,
// so neither is lost. change returns false when there is nothing to
// write; the subscription returned is then as read.
func changeSubscription(ctx context.Context, store storage.Subscriptions, id string, change func(*storage.Subscription) bool) (*storage.Subscription, error) {
	var s *storage.Subscription
	err := storage.RetryOnConflict(func() error {
		var err error
		if s, err = store.GetSubscription(ctx, id); err != nil || !change(s) {
			return err
		}
		return store.UpdateSubscription(ctx, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Event is something to deliver.
type Event struct {
	// ID is the event's id, which receivers see as webhook-id; generated
	// when empty. At most 255 printable ASCII characters, no spaces: it
	// goes out in a header and into the signed content.
	ID             string
	OrganisationID string
	// Environment is "live" (the default) or "test": only subscriptions
	// of that environment receive the event.
	Environment string
	Type        string
	Data        any
	// At defaults to now.
	At time.Time
}

func validEventID(id string) bool {
	if len(id) == 0 || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// payload is the JSON body receivers get.
type payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

func (m *Manager) prepare(ctx context.Context, e Event) (*storage.Event, []string, error) {
	if !slices.Contains(m.cfg.Events, e.Type) {
		return nil, nil, fmt.Errorf("webhook: unknown event type %q", e.Type)
	}
	if e.ID == "" {
		e.ID = storage.NewID()
	} else if !validEventID(e.ID) {
		return nil, nil, fmt.Errorf("webhook: event id %q must be 1 to 255 printable ASCII characters without spaces", e.ID)
	}
	if e.At.IsZero() {
		e.At = m.cfg.Now()
	}
	if e.Environment == "" {
		e.Environment = "live"
	} else if e.Environment != "live" && e.Environment != "test" {
		// Else no subscription would match, and the event would be dropped
		// without a word.
		return nil, nil, fmt.Errorf("webhook: event environment %q must be live or test", e.Environment)
	}
	body, err := json.Marshal(payload{Type: e.Type, Timestamp: e.At.UTC().Format(time.RFC3339), Data: e.Data})
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: event data: %w", err)
	}
	if len(body) > m.cfg.MaxPayload {
		return nil, nil, fmt.Errorf("webhook: the %s event's payload is %d bytes; Config.MaxPayload allows %d", e.Type, len(body), m.cfg.MaxPayload)
	}
	subs, err := m.store.ListSubscriptions(ctx, e.OrganisationID)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook: enqueue: %w", err)
	}
	var ids []string
	for _, s := range subs {
		if !s.Enabled || s.Environment != e.Environment {
			continue
		}
		for _, p := range s.Events {
			if Matches(p, e.Type) {
				ids = append(ids, s.ID)
				break
			}
		}
	}
	return &storage.Event{ID: e.ID, OrganisationID: e.OrganisationID, Environment: e.Environment, Type: e.Type, Payload: body, CreatedAt: e.At.UTC()}, ids, nil
}

// Enqueue stores the event and a delivery for each enabled subscription of
// its organisation and environment that matches its type. The dispatcher
// sends them.
func (m *Manager) Enqueue(ctx context.Context, e Event) error {
	ev, ids, err := m.prepare(ctx, e)
	if err != nil {
		return err
	}
	return m.store.Enqueue(ctx, ev, ids)
}

// EnqueueTx enqueues inside tx, the application's own transaction: the
// event exists exactly when tx commits. The store must implement
// TxEnqueuer.
func (m *Manager) EnqueueTx(ctx context.Context, tx *sql.Tx, e Event) error {
	te, ok := m.store.(TxEnqueuer)
	if !ok {
		return errors.New("webhook: the store cannot enqueue in a SQL transaction")
	}
	ev, ids, err := m.prepare(ctx, e)
	if err != nil {
		return err
	}
	return te.EnqueueTx(ctx, tx, ev, ids)
}

// EventTest is the type of the event [Manager.SendTest] sends.
const EventTest = "webhook.test"

// SendTest enqueues a webhook.test event for the one subscription id and
// returns the event's id: a subscriber checks that its endpoint receives
// and verifies deliveries without waiting for a real event (or making
// one). It goes to that subscription alone, whatever its event patterns,
// and is signed, delivered, retried and listed among the subscription's
// deliveries as every event is. Its data names the subscription and its
// URL. A disabled subscription is refused with a 409 CONFLICT
// *apierror.Error (the dispatcher sends nothing to it); an unknown id is
// storage.ErrNotFound, wrapped.
func (m *Manager) SendTest(ctx context.Context, id string) (string, error) {
	sub, err := m.store.GetSubscription(ctx, id)
	if err != nil {
		return "", fmt.Errorf("webhook: send a test event: %w", err)
	}
	if !sub.Enabled {
		return "", apierror.Conflict("The webhook subscription is disabled: nothing is delivered to it")
	}
	at := m.cfg.Now().UTC()
	body, err := json.Marshal(payload{Type: EventTest, Timestamp: at.Format(time.RFC3339), Data: map[string]string{
		"subscription_id": sub.ID, "url": sub.URL, "message": "A test event: this endpoint receives and verifies deliveries."}})
	if err != nil {
		return "", fmt.Errorf("webhook: send a test event: %w", err)
	}
	ev := &storage.Event{ID: storage.NewID(), OrganisationID: sub.OrganisationID, Environment: sub.Environment, Type: EventTest, Payload: body, CreatedAt: at}
	if err := m.store.Enqueue(ctx, ev, []string{sub.ID}); err != nil {
		return "", fmt.Errorf("webhook: send a test event: %w", err)
	}
	return ev.ID, nil
}

// Redeliver sends one delivery again, now, whatever its state (a manual
// redelivery from a dashboard). The receiver sees the same webhook-id.
func (m *Manager) Redeliver(ctx context.Context, deliveryID string) error {
	if err := m.store.Redeliver(ctx, deliveryID, m.cfg.Now()); err != nil {
		return fmt.Errorf("webhook: redeliver: %w", err)
	}
	return nil
}

// RecoverFailed sends again every failed delivery of a subscription
// created since since (after an endpoint outage), and returns how many.
func (m *Manager) RecoverFailed(ctx context.Context, subscriptionID string, since time.Time) (int, error) {
	n, err := m.store.RedeliverFailed(ctx, subscriptionID, since, m.cfg.Now())
	if err != nil {
		return 0, fmt.Errorf("webhook: recover failed deliveries: %w", err)
	}
	return n, nil
}
