package sqlstore_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// TestPostgresCancellationBurstsLeaveNoBrokenConnections: when many
// requests are cancelled at once in the middle of their queries (a load
// balancer or a client closing its connections), the requests whose own
// contexts are fine must not fail. With pgx's database/sql connection as
// it is, they did: database/sql put the connections pgx had closed back in
// the pool and the live requests met them ("driver: bad connection", a
// 503 to a healthy request). The store's connector reports closed
// connections (driver.Validator), so they leave the pool instead.
func TestPostgresCancellationBurstsLeaveNoBrokenConnections(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name("burst") + "_"
	s := openPostgres(t, sqlstore.Config{TablePrefix: prefix}) // 8 connections for 32 requests: some wait for one
	ctx := t.Context()
	table := prefix + "rows"
	_, err := s.DB().ExecContext(ctx, `CREATE TABLE `+table+` (id int PRIMARY KEY, data text)`)
	require.NoError(t, err)
	_, err = s.DB().ExecContext(ctx, `INSERT INTO `+table+` SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g`)
	require.NoError(t, err)

	query := func(c context.Context) error { // a page query as the reference server runs it: a count, then rows
		var total int
		if err := s.DB().QueryRowContext(c, `SELECT COUNT(*) FROM `+table+` WHERE id > $1`, rand.IntN(100)).Scan(&total); err != nil {
			return err
		}
		rows, err := s.DB().QueryContext(c, `SELECT id, data FROM `+table+` ORDER BY id LIMIT 200 OFFSET $1`, rand.IntN(100))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			var d string
			if err := rows.Scan(&id, &d); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var live, cancelled, broken, other atomic.Int64
	var firstBroken atomic.Value
	stop := time.Now().Add(8 * time.Second) // bounds the run; nothing is asserted on time
	for waves := 0; waves < 400 && time.Now().Before(stop); waves++ {
		wave, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 32 {
			c := wave
			if i%4 == 0 {
				c = ctx // a quarter of the requests are not cancelled with the others
			}
			wg.Go(func() {
				err := query(c)
				switch {
				case c == ctx && errors.Is(err, driver.ErrBadConn):
					broken.Add(1)
					firstBroken.CompareAndSwap(nil, err.Error())
				case c == ctx && err != nil: // not the defect under test (the server refusing connections, say)
					other.Add(1)
					t.Logf("live request failed otherwise: %v", err)
				case c == ctx:
					live.Add(1)
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				}
			})
		}
		time.Sleep(time.Duration(rand.IntN(8000)) * time.Microsecond)
		cancel()
		wg.Wait()
	}
	t.Logf("live requests %d, bad connection %d, other errors %d; cancelled %d", live.Load(), broken.Load(), other.Load(), cancelled.Load())
	require.Positive(t, cancelled.Load(), "the bursts cancelled queries in flight")
	require.Positive(t, live.Load(), "live requests ran")
	assert.Zero(t, broken.Load(), "requests whose contexts were live met broken connections, the first: %v", firstBroken.Load())

	// The broken connections left the pool: a plain query still works.
	var one int
	require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}
