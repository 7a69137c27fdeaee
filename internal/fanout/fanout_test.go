package fanout_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/fanout"
)

// TestWorker: the loop starts once however often Start is called, Stop
// cancels it and waits for it, and a Start after Stop (a handler
// registered on a closed store) starts nothing.
func TestWorker(t *testing.T) {
	var w fanout.Worker
	var runs, ended atomic.Int32
	loop := func(ctx context.Context) { runs.Add(1); <-ctx.Done(); ended.Add(1) }
	w.Start(loop)
	w.Start(loop)
	w.Stop()
	assert.EqualValues(t, 1, runs.Load(), "started once")
	assert.EqualValues(t, 1, ended.Load(), "Stop waited for it")
	w.Start(loop)
	w.Stop()
	assert.EqualValues(t, 1, runs.Load(), "never after Stop")

	var never fanout.Worker
	never.Stop() // stopping what never started returns at once
	never.Start(loop)
	assert.EqualValues(t, 1, runs.Load())
}

// TestMessage: a message is "topic key"; a topic of two words or none, or
// a message PostgreSQL's NOTIFY would refuse, is an error named by the
// package; Parse gives back what Message joined.
func TestMessage(t *testing.T) {
	for _, tc := range []struct{ topic, key string }{{"apikey", "key_1"}, {"oauth-user-client", "client subject with spaces"}, {"apikey", ""}} {
		msg, err := fanout.Message("pkg", tc.topic, tc.key)
		require.NoError(t, err)
		topic, key := fanout.Parse(msg)
		assert.Equal(t, tc.topic, topic)
		assert.Equal(t, tc.key, key)
	}
	for _, tc := range []struct{ topic, key string }{{"", "k"}, {"two words", "k"}, {"apikey", strings.Repeat("k", fanout.MaxMessage)}} {
		_, err := fanout.Message("pkg", tc.topic, tc.key)
		assert.ErrorContains(t, err, "pkg: invalidate:", "%q", tc.topic)
	}
	_, err := fanout.Message("pkg", "apikey", strings.Repeat("k", fanout.MaxMessage-len("apikey ")))
	assert.NoError(t, err, "at the bound")
}

// FuzzMessage: whatever a topic and key hold, Message either refuses them
// or joins them so that Parse gives both back; Parse takes any payload (a
// NOTIFY or PUBLISH by anything else on the channel) without failing.
func FuzzMessage(f *testing.F) {
	f.Add("apikey", "key_1")
	f.Add("oauth-user-client", "client subject")
	f.Add("", "")
	f.Add("two words", "k")
	f.Fuzz(func(t *testing.T, topic, key string) {
		fanout.Parse(topic + key)
		msg, err := fanout.Message("pkg", topic, key)
		if err != nil {
			return
		}
		gotTopic, gotKey := fanout.Parse(msg)
		if gotTopic != topic || gotKey != key {
			t.Fatalf("Message(%q, %q) = %q parses as %q, %q", topic, key, msg, gotTopic, gotKey)
		}
	})
}
