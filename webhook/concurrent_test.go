package webhook_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

// TestSecretRotatedDuringADeliveryIsKept: a secret rotated while a
// delivery is in flight stays rotated when the delivery's outcome marks
// the endpoint failing or healthy again (the dispatcher wrote back the
// subscription it had read before the delivery, so the new secret was
// lost and receivers set up with it failed every signature).
func TestSecretRotatedDuringADeliveryIsKept(t *testing.T) {
	t.Parallel()
	for name, st := range map[string]storage.Store{"memory": memory.New(), "postgres": postgresStore(t, "whrot_")} {
		t.Run(name, func(t *testing.T) {
			var f *fixture
			var mu sync.Mutex
			rotated := map[int]string{}
			rv := newReceiver(t, func(n int, w http.ResponseWriter) {
				s, err := f.mgr.RotateSecret(t.Context(), f.sub.ID, "")
				require.NoError(t, err)
				mu.Lock()
				rotated[n] = s.Secret
				mu.Unlock()
				if n == 1 {
					w.WriteHeader(http.StatusInternalServerError) // marks it failing
				}
			})
			f = newFixture(t, st, rv.srv.URL, loopback)
			d := f.dispatcher(t, webhook.DispatcherConfig{})
			for n, outcome := range []string{"failing", "healthy again"} {
				if n == 0 {
					f.enqueue(t, "booking.created")
				} else {
					f.clk.Add(time.Hour) // past the retry, which succeeds
				}
				_, err := d.RunOnce(t.Context())
				require.NoError(t, err)
				require.Equal(t, n+1, rv.count())
				sub, err := st.GetSubscription(t.Context(), f.sub.ID)
				require.NoError(t, err)
				mu.Lock()
				want := rotated[n+1]
				mu.Unlock()
				assert.Equal(t, want, sub.Secret, "marked %s, the subscription lost the secret rotated meanwhile", outcome)
				assert.Equal(t, n == 0, !sub.FailingSince.IsZero(), "marked %s", outcome)
			}
		})
	}
}

// postgresStore is a migrated store in a fresh PostgreSQL schema.
func postgresStore(t *testing.T, prefix string) *sqlstore.Store {
	t.Helper()
	pg, err := sqlstore.Open(t.Context(), testenv.PostgresSchema(t, prefix), sqlstore.Config{MaxOpenConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	require.NoError(t, pg.Migrate(t.Context()))
	return pg
}
