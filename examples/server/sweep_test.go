package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

func TestSweepDeletesExpiredTokensOnly(t *testing.T) {
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "g.db"), sqlstore.Config{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Migrate(ctx))
	now := time.Now().UTC()
	for sig, exp := range map[string]time.Time{"old": now.Add(-2 * time.Hour), "grace": now.Add(-10 * time.Minute), "live": now.Add(time.Hour)} {
		require.NoError(t, s.CreateToken(ctx, &storage.Token{Kind: storage.KindSession, Signature: sig, RequestID: "u", Subject: "u", RequestedAt: now, ExpiresAt: exp, Active: true}))
	}
	a := &app{store: s, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sweepCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.sweepExpired(sweepCtx, time.Hour); close(done) }()
	require.Eventually(t, func() bool {
		_, err := s.GetToken(ctx, storage.KindSession, "old")
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the expired token was not swept")
	stop()
	<-done
	for _, sig := range []string{"grace", "live"} {
		_, err := s.GetToken(ctx, storage.KindSession, sig)
		assert.NoError(t, err, "%s was swept", sig)
	}
}
