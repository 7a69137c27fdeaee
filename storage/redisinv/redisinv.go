// Package redisinv is a [gatehouse.Invalidator] over Redis pub/sub, for
// deployments whose storage is not sqlstore's (an adapter of your own over
// MySQL, say) and whose instances share a Redis: a key or token revoked on
// one instance is refused by the others at once instead of when their
// caches expire.
//
// Every Invalidate is a PUBLISH on one channel ("gatehouse:invalidate" by
// default); each Invalidator that has handlers holds one subscribed
// connection, checked with a PING when it has been quiet for a while, and
// subscribes again on a new connection when that one fails or stops
// answering. Messages published meanwhile are lost, so after every
// subscription, the first included, it calls every handler with the empty
// key: the caches forget everything, and the next requests read the store.
//
// Redis delivers a message at once, not when a database transaction
// commits: a change made inside a transaction (an apikey.Manager call in
// storage.Tx.InTx) may reach another instance before the commit, and that
// instance may then cache the row as it was for its cache TTL. Make such
// changes outside the transaction, or use sqlstore's Invalidator, which
// PostgreSQL delivers at commit.
package redisinv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-go/gatehouse/internal/fanout"
)

// Config holds the settings of an [Invalidator]; the zero value is usable.
type Config struct {
	// Channel is the pub/sub channel of the deployment's instances.
	// Default: "gatehouse:invalidate".
	Channel string
	// Quiet is how long the subscribed connection may go without a
	// message before a PING checks it; a PING unanswered for as long again
	// ends the connection. Default: 15 s.
	Quiet time.Duration
	// Logger receives the subscription's failures. Default: silent.
	Logger *slog.Logger
}

// Invalidator implements gatehouse.Invalidator over Redis pub/sub. It is
// safe for concurrent use.
type Invalidator struct {
	client redis.UniversalClient
	cfg    Config
	log    *slog.Logger
	hub    fanout.Hub
	worker fanout.Worker // the subscription
}

// New returns an Invalidator over client, which the caller keeps and
// closes after [Invalidator.Close].
func New(client redis.UniversalClient, cfg Config) (*Invalidator, error) {
	if client == nil {
		return nil, errors.New("redisinv: New needs a Redis client")
	}
	if cfg.Channel == "" {
		cfg.Channel = "gatehouse:invalidate"
	}
	if cfg.Quiet < 0 {
		return nil, errors.New("redisinv: Quiet must not be negative")
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = 15 * time.Second
	}
	v := &Invalidator{client: client, cfg: cfg, log: cfg.Logger}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// Invalidate implements gatehouse.Invalidator: it publishes the message and
// returns once Redis has it. The handlers of this Invalidator hear it as
// every other's do, through Redis.
func (v *Invalidator) Invalidate(ctx context.Context, topic, key string) error {
	msg, err := fanout.Message("redisinv", topic, key)
	if err != nil {
		return err
	}
	if err := v.client.Publish(ctx, v.cfg.Channel, msg).Err(); err != nil {
		return fmt.Errorf("redisinv: invalidate: %w", err)
	}
	return nil
}

// OnInvalidate implements gatehouse.Invalidator. The first call starts
// the subscription, which runs until [Invalidator.Close].
func (v *Invalidator) OnInvalidate(topic string, fn func(key string)) (cancel func()) {
	cancel = v.hub.Add(topic, fn)
	v.worker.Start(v.subscribe)
	return cancel
}

// Close ends the subscription, if it runs, and waits for it. It does not
// close the client.
func (v *Invalidator) Close() error {
	v.worker.Stop()
	return nil
}

// subscribe keeps a subscription until ctx ends, subscribing again on a
// new connection after a failure, at most every few seconds.
func (v *Invalidator) subscribe(ctx context.Context) {
	fanout.Retry(ctx, v.log, "invalidation subscription lost; subscribing again", []any{"channel", v.cfg.Channel}, v.subscribeOnce)
}

// errNoPong is the subscription's error for a connection that did not
// answer a PING.
var errNoPong = errors.New("redisinv: the subscribed connection did not answer a PING")

// subscribeOnce subscribes on a connection of its own and passes on what
// it hears until the connection fails, goes silent or ctx ends; it
// reports whether the subscription was confirmed. The connection is
// closed afterwards: a failed one is never reused.
func (v *Invalidator) subscribeOnce(ctx context.Context) (bool, error) {
	ps := v.client.Subscribe(ctx)
	defer ps.Close()
	// A read waiting for a message does not end with ctx (go-redis bounds
	// it by the timeout alone): closing the PubSub ends it, so that Close
	// does not wait out Quiet.
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-ctx.Done():
			_ = ps.Close()
		case <-returned:
		}
	}()
	// Subscribe with no channel only makes the PubSub; the SUBSCRIBE
	// itself is sent here, so that its failure is this attempt's.
	if err := ps.Subscribe(ctx, v.cfg.Channel); err != nil {
		return false, err
	}
	confirmed, pinged := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, v.cfg.Quiet)
		var nerr interface{ Timeout() bool }
		switch {
		case err == nil:
		case errors.As(err, &nerr) && nerr.Timeout() && !pinged && ctx.Err() == nil:
			// Quiet for a while: ask, and hear the answer (or nothing)
			// within as long again.
			if err := ps.Ping(ctx); err != nil {
				return confirmed, err
			}
			pinged = true
			continue
		case errors.As(err, &nerr) && nerr.Timeout():
			return confirmed, errNoPong
		default:
			return confirmed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == v.cfg.Channel {
				confirmed = true
				v.hub.Dispatch("", "") // anything published before this moment may have been missed
			}
		case *redis.Message:
			v.hub.Dispatch(fanout.Parse(m.Payload))
		}
	}
}
