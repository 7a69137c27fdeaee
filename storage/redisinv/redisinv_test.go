package redisinv_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/redisinv"
	"github.com/gatehouse-go/gatehouse/storage/storagetest"
)

var _ gatehouse.Invalidator = (*redisinv.Invalidator)(nil)

// client returns a client of the test Redis named name (CLIENT LIST shows
// it), through addr when it is not empty.
func client(t *testing.T, name, addr string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testenv.Redis(t))
	require.NoError(t, err)
	opt.ClientName = name
	if addr != "" {
		opt.Addr = addr
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newInvalidator(t *testing.T, c *redis.Client, cfg redisinv.Config) *redisinv.Invalidator {
	t.Helper()
	v, err := redisinv.New(c, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond, what)
}

// TestConformance: two Invalidators on one channel, each with a client of
// its own as two instances have, pass the suite; one on another channel
// hears neither.
func TestConformance(t *testing.T) {
	channel := testenv.Name("inv")
	storagetest.RunInvalidator(t, func(t *testing.T) (storagetest.Invalidator, storagetest.Invalidator) {
		return newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: channel}),
			newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: channel})
	})
}

// TestRefusesBadInput: what New and Invalidate refuse.
func TestRefusesBadInput(t *testing.T) {
	_, err := redisinv.New(nil, redisinv.Config{})
	assert.Error(t, err)
	_, err = redisinv.New(redis.NewClient(&redis.Options{}), redisinv.Config{Quiet: -time.Second})
	assert.Error(t, err)
	v := newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: testenv.Name("inv")})
	for _, bad := range [][2]string{{"", "k"}, {"two words", "k"}, {"apikey", strings.Repeat("k", 8000)}} {
		assert.Error(t, v.Invalidate(t.Context(), bad[0], bad[1]), "%q", bad[0])
	}
	down := newInvalidator(t, redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), redisinv.Config{})
	assert.Error(t, down.Invalidate(t.Context(), "apikey", "k"), "Redis unreachable: the caller logs it and relies on the cache TTL")
}

// TestSubscribesAgain: when the subscribed connection is killed (a Redis
// restart, a failover), the Invalidator subscribes again, tells every
// handler that messages may have been missed, and hears those after.
func TestSubscribesAgain(t *testing.T) {
	name := testenv.Name("sub")
	c := client(t, name, "")
	v := newInvalidator(t, c, redisinv.Config{Channel: name})
	h := &testenv.Heard{}
	v.OnInvalidate("apikey", h.Add)
	eventually(t, func() bool { return h.Count("") == 1 }, "the first subscription: forget what was cached before it")

	admin := client(t, "", "")
	list, err := admin.ClientList(t.Context()).Result()
	require.NoError(t, err)
	killed := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " sub=1 ") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			require.NoError(t, admin.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err())
			killed++
		}
	}
	require.Equal(t, 1, killed, "one subscribed connection:\n%s", list)
	eventually(t, func() bool { return h.Count("") == 2 }, "subscribed again, and told to forget everything")
	require.NoError(t, v.Invalidate(t.Context(), "apikey", "key_after"))
	eventually(t, func() bool { return h.Count("key_after") == 1 }, "heard after subscribing again")
}

// TestSilentConnection: a subscribed connection that stops carrying
// anything without failing (a network that drops packets, a Redis that
// hangs) is found out by an unanswered PING after Quiet, and replaced.
func TestSilentConnection(t *testing.T) {
	p := newFreezingProxy(t)
	name := testenv.Name("silent")
	v := newInvalidator(t, client(t, name, p.addr()), redisinv.Config{Channel: name, Quiet: 50 * time.Millisecond})
	h := &testenv.Heard{}
	v.OnInvalidate("apikey", h.Add)
	eventually(t, func() bool { return h.Count("") == 1 }, "subscribed")
	time.Sleep(200 * time.Millisecond) // quiet: PINGs are answered, the subscription stays
	require.Equal(t, 1, h.Count(""), "an answered PING keeps the subscription")

	p.freeze() // the connections so far carry nothing more; new ones work
	publisher := newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: name})
	require.NoError(t, publisher.Invalidate(t.Context(), "apikey", "key_lost"))
	eventually(t, func() bool { return h.Count("") == 2 }, "the silent connection replaced, and the caches told to forget everything")
	require.NoError(t, publisher.Invalidate(t.Context(), "apikey", "key_after"))
	eventually(t, func() bool { return h.Count("key_after") == 1 }, "heard on the new connection")
}

// TestAcrossInstancesOfYourOwnStore: two API-key managers sharing a store
// that is not sqlstore (here the memory store stands for an adapter of
// your own) and a Redis: a key revoked through one is refused by the
// other at once, though it verified the key a moment before and trusts
// its cache for an hour.
func TestAcrossInstancesOfYourOwnStore(t *testing.T) {
	ctx := t.Context()
	channel := testenv.Name("keys")
	store := memory.New()
	manager := func(inv gatehouse.Invalidator) *apikey.Manager {
		m, err := apikey.New(store, apikey.Config{CacheTTL: time.Hour, Invalidator: inv, FlushInterval: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	a := newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: channel})
	b := newInvalidator(t, client(t, "", ""), redisinv.Config{Channel: channel})
	here, there, unaware := manager(a), manager(b), manager(nil)
	h := &testenv.Heard{}
	b.OnInvalidate("storagetest-ready", h.Add)
	eventually(t, func() bool { return h.Count("") > 0 }, "b subscribed")

	secret, k, err := here.Create(ctx, apikey.CreateParams{OrganisationID: "org", Name: "CI", Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	for _, m := range []*apikey.Manager{there, unaware} {
		_, err := m.Verify(ctx, secret.Reveal(), "192.0.2.1")
		require.NoError(t, err)
	}
	_, err = here.Revoke(ctx, k.ID)
	require.NoError(t, err)
	eventually(t, func() bool {
		_, err := there.Verify(ctx, secret.Reveal(), "192.0.2.1")
		var ve *apikey.VerifyError
		return errors.As(err, &ve)
	}, "revoked on one instance: refused on the other")
	_, err = unaware.Verify(ctx, secret.Reveal(), "192.0.2.1")
	assert.NoError(t, err, "without the invalidator the cached key stays good for the cache TTL")
}

// freezingProxy forwards TCP connections to the test Redis; freeze makes
// the connections open so far carry nothing more, without closing them.
type freezingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []chan struct{}
}

func newFreezingProxy(t *testing.T) *freezingProxy {
	t.Helper()
	opt, err := redis.ParseURL(testenv.Redis(t))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezingProxy{ln: ln, target: opt.Addr}
	var open []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			open = append(open, in, out)
			mu.Unlock()
			stop := make(chan struct{})
			p.mu.Lock()
			p.conns = append(p.conns, stop)
			p.mu.Unlock()
			go p.pipe(out, in, stop)
			go p.pipe(in, out, stop)
		}
	}()
	return p
}

func (p *freezingProxy) addr() string { return p.ln.Addr().String() }

// pipe copies from src to dst until either fails; once stop is closed it
// reads on and forwards nothing.
func (p *freezingProxy) pipe(dst io.Writer, src io.Reader, stop chan struct{}) {
	r := bufio.NewReader(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-stop:
			continue // swallowed
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, stop := range p.conns {
		close(stop)
	}
	p.conns = nil
}
