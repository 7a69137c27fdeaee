package storage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gatehouse-go/gatehouse/storage"
)

func TestRetryOnConflict(t *testing.T) {
	other := errors.New("connection refused")
	for _, tc := range []struct {
		name      string
		conflicts int   // attempts that fail with ErrConflict first
		then      error // what the attempt after them returns
		wantCalls int
		want      error
	}{
		{"succeeds at once", 0, nil, 1, nil},
		{"succeeds after conflicts", 3, nil, 4, nil},
		{"another error stops it", 2, other, 3, other},
		{"gives up after 16", 100, nil, 16, storage.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := storage.RetryOnConflict(func() error {
				calls++
				if calls <= tc.conflicts {
					return fmt.Errorf("update: %w", storage.ErrConflict)
				}
				return tc.then
			})
			assert.Equal(t, tc.wantCalls, calls)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
}

// A read, a change and a conditional write, read again when another
// change came between.
func ExampleRetryOnConflict() {
	attempts := 0
	err := storage.RetryOnConflict(func() error {
		attempts++
		// k, err := store.GetAPIKey(ctx, id); change k; return store.UpdateAPIKey(ctx, k)
		if attempts == 1 {
			return storage.ErrConflict // someone else wrote first
		}
		return nil
	})
	fmt.Println(attempts, err)
	// Output: 2 <nil>
}
