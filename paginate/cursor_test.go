package paginate_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/paginate"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestCursors(t *testing.T) {
	t.Parallel()
	c, err := paginate.NewCursors(key)
	require.NoError(t, err)
	pos := paginate.Position{CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC), ID: "0194a3b2-7c1d-7000-8000-000000000001"}
	cur := c.Encode(pos, "status=active|created_at")
	got, err := c.Decode(cur, "status=active|created_at")
	require.NoError(t, err)
	assert.Equal(t, pos, got)

	other, _ := paginate.NewCursors([]byte("another key, another server ....."))
	flipped := []byte(cur)
	flipped[3] ^= 1
	for name, tc := range map[string]struct{ cursor, binding string }{
		"tampered":      {string(flipped), "status=active|created_at"},
		"other query":   {cur, "status=cancelled|created_at"},
		"other key":     {other.Encode(pos, "status=active|created_at"), "status=active|created_at"},
		"no signature":  {strings.Split(cur, ".")[0], "status=active|created_at"},
		"garbage":       {"!!!.???", "status=active|created_at"},
		"empty":         {"", ""},
		"huge":          {strings.Repeat("a", 1000) + ".b", ""},
		"short payload": {"AA." + strings.Split(cur, ".")[1], "status=active|created_at"},
	} {
		_, err := c.Decode(tc.cursor, tc.binding)
		e := apierror.From(err)
		assert.Equal(t, 400, e.Status, name)
		assert.Equal(t, "cursor", e.Details.(apierror.FieldIssue).Field, name)
	}
	_, err = paginate.NewCursors([]byte("short"))
	assert.Error(t, err)

	// The binding ignores pagination parameters and parameter order.
	a := paginate.Binding(httptest.NewRequest("GET", "/x?status=a&sort=b&limit=5&cursor=x", nil))
	b := paginate.Binding(httptest.NewRequest("GET", "/x?sort=b&status=a", nil))
	assert.Equal(t, a, b)
}

// TestKeysetWalk walks a table page by page through cursors and checks
// every row comes once, in order, even when rows share a timestamp.
func TestKeysetWalk(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "k.db"))
	require.NoError(t, err)
	defer db.Close()
	ctx := t.Context()
	_, err = db.ExecContext(ctx, `CREATE TABLE items (id TEXT PRIMARY KEY, created_at BIGINT NOT NULL)`)
	require.NoError(t, err)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 53 {
		_, err = db.ExecContext(ctx, `INSERT INTO items VALUES (?, ?)`, fmt.Sprintf("id-%03d", i), base.Add(time.Duration(i/3)*time.Second).UnixMicro())
		require.NoError(t, err)
	}
	c, _ := paginate.NewCursors(key)
	var seen []string
	var pos *paginate.Position
	for range 20 {
		clause, args := paginate.Keyset(paginate.SQLite, 1, "created_at", "id", pos, 10, false, func(t time.Time) any { return t.UnixMicro() })
		rows, err := db.QueryContext(ctx, `SELECT id, created_at FROM items WHERE TRUE`+clause, args...)
		require.NoError(t, err)
		var last *paginate.Position
		for rows.Next() {
			var id string
			var at int64
			require.NoError(t, rows.Scan(&id, &at))
			seen = append(seen, id)
			last = &paginate.Position{CreatedAt: time.UnixMicro(at).UTC(), ID: id}
		}
		require.NoError(t, rows.Close())
		if last == nil {
			break
		}
		// Round-trip through the cursor, as a client would.
		p, err := c.Decode(c.Encode(*last, "b"), "b")
		require.NoError(t, err)
		pos = &p
	}
	require.Len(t, seen, 53)
	for i, id := range seen {
		assert.Equal(t, fmt.Sprintf("id-%03d", i), id)
	}
	clause, _ := paginate.Keyset(paginate.Dollar, 3, "created_at", "id", pos, 10, true, func(t time.Time) any { return t })
	assert.Equal(t, " AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5", clause)
}

func FuzzDecode(f *testing.F) {
	c, _ := paginate.NewCursors(key)
	f.Add(c.Encode(paginate.Position{CreatedAt: time.Now(), ID: "x"}, "b"), "b")
	f.Add("AAAA.BBBB", "")
	f.Fuzz(func(t *testing.T, cursor, binding string) {
		pos, err := c.Decode(cursor, binding)
		if err != nil {
			if apierror.From(err).Status != 400 {
				t.Fatal(err)
			}
			return
		}
		if c.Encode(pos, binding) != cursor {
			// Only our own encoding verifies.
			t.Fatalf("accepted a cursor we did not make: %q", cursor)
		}
	})
}

// BenchmarkDeepPages compares offset and keyset pages at depth on a
// 1,000,000-row PostgreSQL table (page 1, 1,000 and 40,000 of 25 rows).
func BenchmarkDeepPages(b *testing.B) {
	dsn := testenv.Postgres(b)
	db, err := sql.Open("pgx", dsn)
	require.NoError(b, err)
	defer db.Close()
	ctx := context.Background()
	table := testenv.Name("pg_")
	_, err = db.ExecContext(ctx, `CREATE TABLE `+table+` (id TEXT PRIMARY KEY, created_at BIGINT NOT NULL, payload TEXT NOT NULL)`)
	require.NoError(b, err)
	defer db.ExecContext(ctx, `DROP TABLE `+table)
	_, err = db.ExecContext(ctx, `INSERT INTO `+table+` SELECT lpad(g::text, 10, '0'), 1700000000000000 + g * 1000, md5(g::text) FROM generate_series(1, 1000000) g`)
	require.NoError(b, err)
	_, err = db.ExecContext(ctx, `CREATE INDEX ON `+table+` (created_at, id); ANALYZE `+table)
	require.NoError(b, err)
	toDB := func(t time.Time) any { return t.UnixMicro() }
	for _, page := range []int{1, 1000, 40000} {
		offset := (page - 1) * 25
		b.Run(fmt.Sprintf("offset/page-%d", page), func(b *testing.B) {
			for b.Loop() {
				rows, err := db.QueryContext(ctx, `SELECT id, created_at, payload FROM `+table+` ORDER BY created_at, id LIMIT 25 OFFSET $1`, offset)
				require.NoError(b, err)
				for rows.Next() {
				}
				rows.Close()
			}
		})
		var pos *paginate.Position
		if offset > 0 {
			var id string
			var at int64
			require.NoError(b, db.QueryRowContext(ctx, `SELECT id, created_at FROM `+table+` ORDER BY created_at, id LIMIT 1 OFFSET $1`, offset-1).Scan(&id, &at))
			pos = &paginate.Position{CreatedAt: time.UnixMicro(at), ID: id}
		}
		b.Run(fmt.Sprintf("keyset/page-%d", page), func(b *testing.B) {
			clause, args := paginate.Keyset(paginate.Dollar, 1, "created_at", "id", pos, 25, false, toDB)
			for b.Loop() {
				rows, err := db.QueryContext(ctx, `SELECT id, created_at, payload FROM `+table+` WHERE TRUE`+clause, args...)
				require.NoError(b, err)
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				if n != 25 {
					b.Fatalf("got %d rows", n)
				}
			}
		})
	}
}
