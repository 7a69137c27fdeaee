package sqlstore

import (
	"context"
	"time"
)

// SetInvalidationTimes sets how often s's SQLite poller reads and sweeps
// the invalidations table and how long rows are kept; call it before the
// first OnInvalidate.
func SetInvalidationTimes(s *Store, poll, sweep, keep time.Duration) {
	s.inv.poll, s.inv.sweep, s.inv.keep = poll, sweep, keep
}

// PollInvalidations runs one read of s's SQLite poller from *last (-1: the
// first read) and returns the error.
func PollInvalidations(s *Store, last *int64) error {
	return s.inv.pollOnce(context.Background(), last)
}
