package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// The fault-injection tests stop and start the machine's PostgreSQL and
// Redis, so they must not run beside other packages' tests: they run only
// with GATEHOUSE_FAULTS=1, which .ci/run sets in a step of their own. The
// commands default to this project's Debian machines and can be replaced.
const faultsEnv = "GATEHOUSE_FAULTS"

var faultCommands = map[string]string{
	"GATEHOUSE_FAULT_PG_STOP":     `pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main stop -m fast`,
	"GATEHOUSE_FAULT_PG_START":    `pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start`,
	"GATEHOUSE_FAULT_PG_FREEZE":   `pkill -STOP -u postgres`, // every PostgreSQL process stops answering, connections stay open
	"GATEHOUSE_FAULT_PG_THAW":     `pkill -CONT -u postgres`,
	"GATEHOUSE_FAULT_REDIS_STOP":  `redis-cli -h 127.0.0.1 -p 6379 shutdown nosave`,
	"GATEHOUSE_FAULT_REDIS_START": `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`,
}

func needFaults(t *testing.T) {
	t.Helper()
	if os.Getenv(faultsEnv) != "1" {
		t.Skipf("fault injection stops the shared PostgreSQL and Redis: run with %s=1 alone (.ci/run does, in its own step)", faultsEnv)
	}
}

func fault(t *testing.T, name string) {
	t.Helper()
	cmd := faultCommands[name]
	if v := os.Getenv(name); v != "" {
		cmd = v
	}
	out, err := exec.Command("bash", "-c", cmd).CombinedOutput()
	require.NoError(t, err, "%s (%s): %s", name, cmd, out)
}

// loadResult counts what a load run saw.
type loadResult struct {
	mu        sync.Mutex
	status    map[int]int // of the /v1 API
	token     map[int]int // of the token endpoint
	transport []string
	created   []string
	during    map[int]int // /v1 statuses while the fault was on
}

func (l *loadResult) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("API statuses %v (during the fault %v), token endpoint %v, transport errors %d, created %d", l.status, l.during, l.token, len(l.transport), len(l.created))
}

// runLoad sends GET and POST /v1/customers from workers goroutines, and
// client-credentials token requests, until ctx ends; faulty says whether
// the fault is on.
func runLoad(ctx context.Context, s *server, key string, workers int, faulty func() bool) (*loadResult, *sync.WaitGroup) {
	l := &loadResult{status: map[int]int{}, during: map[int]int{}, token: map[int]int{}}
	var wg sync.WaitGroup
	client := &http.Client{Transport: validating{s.spec, http.DefaultTransport}, Timeout: 20 * time.Second}
	record := func(res *http.Response, err error, token, created bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				l.transport = append(l.transport, err.Error())
			}
			return
		}
		defer res.Body.Close()
		if token {
			l.token[res.StatusCode]++
			return
		}
		l.status[res.StatusCode]++
		if faulty() {
			l.during[res.StatusCode]++
		}
		if created && res.StatusCode == 201 {
			var c struct{ ID string }
			if json.NewDecoder(res.Body).Decode(&c) == nil {
				l.created = append(l.created, c.ID)
			}
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var req *http.Request
				if (i+w)%2 == 0 {
					req, _ = http.NewRequestWithContext(ctx, "GET", s.base+"/v1/customers?per_page=5", nil)
				} else {
					body := fmt.Sprintf(`{"first_name":"Load","last_name":"W%d","email":"w%d-%d@example.com"}`, w, w, i)
					req, _ = http.NewRequestWithContext(ctx, "POST", s.base+"/v1/customers", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Authorization", "Bearer "+key)
				res, err := client.Do(req)
				record(res, err, false, req.Method == "POST")
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	// Token requests, one every 1.5 s: 40 a minute, under the endpoint's
	// 60 however long the test runs (a PostgreSQL slow to start again
	// made four a second cross it).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"customers:read"}}
			req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(s.demo["OAuth client"], s.demo["client secret"])
			res, err := client.Do(req)
			record(res, err, true, false)
			time.Sleep(1500 * time.Millisecond)
		}
	}()
	return l, &wg
}

// pgServer starts the server on a fresh PostgreSQL schema.
func pgServer(t *testing.T, extra ...string) (*server, string) {
	db := testenv.PostgresSchema(t, "fault_")
	return start(t, db, extra...), db
}

// TestFaultPostgresHangs freezes PostgreSQL (its processes stopped, its
// connections open: a lock held by a migration, or a network that drops
// packets instead of refusing them, look the same to the server):
// requests that need the database are answered 503 in the envelope with
// Retry-After (the token endpoint: temporarily_unavailable) once
// -request-timeout passes, rather than held for as long
// as the client waits, and the server serves again as soon as the
// database answers.
func TestFaultPostgresHangs(t *testing.T) {
	needFaults(t)
	fault(t, "GATEHOUSE_FAULT_PG_THAW") // in case an earlier run left it frozen
	s, db := pgServer(t, "-request-timeout", "2s")
	s.http.Timeout = 30 * time.Second // a request held for as long as the client waits fails the test, not hangs it
	key := admin(t, db, "key", "create", "--org", "demo", "--name", "hang", "--scopes", "customers:read customers:write", "--env", "test")["key"].(string)
	require.Equal(t, 200, s.do("GET", "/v1/customers", key, nil).status)
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			fault(t, "GATEHOUSE_FAULT_PG_THAW") // never leave the machine's database frozen
		}
	})
	fault(t, "GATEHOUSE_FAULT_PG_FREEZE")
	for _, call := range []func() resp{
		func() resp { return s.do("GET", "/v1/customers", key, nil) },
		func() resp {
			return s.do("POST", "/v1/customers", key, map[string]any{"first_name": "Frozen", "last_name": "Database", "email": "f@example.com"})
		},
	} {
		r := call()
		assert.Equal(t, 503, r.status, "%s", r.body)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		assert.Equal(t, "SERVICE_UNAVAILABLE", r.json(t)["error"].(map[string]any)["code"], "%s", r.body)
	}
	// The token endpoint, which reads the client and the user.
	req, err := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(s.demoPasswordForm().Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := s.http.Do(req)
	require.NoError(t, err)
	var tokenErr map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tokenErr))
	res.Body.Close()
	assert.Equal(t, 503, res.StatusCode, "%v", tokenErr)
	assert.Equal(t, "temporarily_unavailable", tokenErr["error"])
	fault(t, "GATEHOUSE_FAULT_PG_THAW")
	thawed = true
	require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", key, nil).status == 200 }, 60*time.Second, 200*time.Millisecond,
		"the server did not serve again after the database thawed:\n%s", s.logs())
}

// TestFaultPostgresRestartUnderLoad stops PostgreSQL for a few seconds
// while the server is under load: requests fail cleanly (503 in the
// envelope, or temporarily_unavailable from the token endpoint; never a
// 500, a hang or a panic), the server recovers by itself when the
// database is back, and no acknowledged write is lost.
func TestFaultPostgresRestartUnderLoad(t *testing.T) {
	needFaults(t)
	s, db := pgServer(t)
	// A key of its own with a limit the load does not reach.
	key := admin(t, db, "key", "create", "--org", "demo", "--name", "load", "--scopes", "customers:read customers:write", "--env", "test",
		"--rate-limit", "1000000/m")["key"].(string)
	var mu sync.Mutex
	down := false
	faulty := func() bool { mu.Lock(); defer mu.Unlock(); return down }
	ctx, cancel := context.WithCancel(context.Background())
	l, wg := runLoad(ctx, s, key, 4, faulty)
	t.Cleanup(func() { cancel(); wg.Wait() })
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			fault(t, "GATEHOUSE_FAULT_PG_START") // never leave the machine without its database
		}
	})

	time.Sleep(2 * time.Second)
	mu.Lock()
	down = true
	mu.Unlock()
	fault(t, "GATEHOUSE_FAULT_PG_STOP")
	time.Sleep(4 * time.Second)
	fault(t, "GATEHOUSE_FAULT_PG_START")
	restarted = true
	mu.Lock()
	down = false
	mu.Unlock()
	upAt := time.Now()

	// Recovery without a restart of the server.
	require.Eventually(t, func() bool {
		return s.do("GET", "/v1/customers", key, nil).status == 200 &&
			s.do("POST", "/v1/customers", key, map[string]any{"first_name": "After", "last_name": "Fault", "email": "after@example.com"}).status == 201
	}, 60*time.Second, 200*time.Millisecond, "the server did not recover: %s\n%s", l, s.logs())
	t.Logf("recovered %.1f s after PostgreSQL was started", time.Since(upAt).Seconds())
	time.Sleep(2 * time.Second) // load after recovery
	cancel()
	wg.Wait()
	t.Log(l)

	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Greater(t, l.during[503], 0, "no request saw the outage: %s", l)
	for status, n := range l.status {
		assert.Contains(t, []int{200, 201, 503}, status, "%d API answers with status %d", n, status)
	}
	for status, n := range l.token {
		assert.Contains(t, []int{200, 503}, status, "%d token answers with status %d", n, status)
	}
	assert.Greater(t, l.token[503], 0, "the token endpoint answers temporarily_unavailable during the outage")
	assert.Empty(t, l.transport, "requests hung or were dropped")
	assert.NotContains(t, s.logs(), "panic")
	// Every acknowledged write is there.
	for _, id := range l.created {
		assert.Equal(t, 200, s.do("GET", "/v1/customers/"+id, key, nil).status, "customer %s was acknowledged but is gone", id)
	}
	assert.Nil(t, s.cmd.ProcessState, "the server kept running")
}

// TestFaultRedisStopStart stops Redis under load with one server failing
// closed and one degrading to per-instance limits: the first answers 503
// (in the envelope) and the second keeps limiting in memory; when Redis
// is back both return to the shared limit without a restart.
func TestFaultRedisStopStart(t *testing.T) {
	needFaults(t)
	redisURL := testenv.Redis(t)
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	closed := start(t, db, "-redis", redisURL, "-redis-failure", "closed")
	degrade := start(t, db, "-redis", redisURL, "-redis-failure", "degrade")
	key := closed.demo["test API key (sandbox)"]
	limited := admin(t, db, "key", "create", "--org", "demo", "--name", "limited", "--scopes", "customers:read", "--env", "test", "--rate-limit", "1000/h")["key"].(string)

	remaining := func(s *server) int {
		r := s.do("GET", "/v1/customers", limited, nil)
		require.Equal(t, 200, r.status, string(r.body))
		var n int
		_, _ = fmt.Sscan(r.header.Get("X-RateLimit-Remaining"), &n)
		return n
	}
	assert.Equal(t, 999, remaining(closed))
	assert.Equal(t, 998, remaining(degrade), "one budget across both instances")

	restarted := false
	t.Cleanup(func() {
		if !restarted {
			fault(t, "GATEHOUSE_FAULT_REDIS_START")
		}
	})
	fault(t, "GATEHOUSE_FAULT_REDIS_STOP")
	r := closed.do("GET", "/v1/customers", key, nil)
	assert.Equal(t, 503, r.status, "fail closed: %s", r.body)
	assert.Equal(t, "SERVICE_UNAVAILABLE", r.json(t)["error"].(map[string]any)["code"])
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	r = degrade.do("GET", "/v1/customers", key, nil)
	assert.Equal(t, 200, r.status, "degrade: served with per-instance limits")
	assert.NotEmpty(t, r.header.Get("X-RateLimit-Remaining"))
	// Sign-in: failed attempts are counted in the same limiter. Fail
	// closed, no password is checked: the token endpoint answers 503 (its
	// per-address limiter, first in line, is down too), the dashboard its
	// form with 503; degraded, sign-in goes on with per-instance counts.
	form := closed.demoPasswordForm()
	res, err := closed.http.PostForm(closed.base+"/oauth/token", form) // checked against the OpenAPI document
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, 503, res.StatusCode, "fail closed: %s", body)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.NotContains(t, string(body), "access_token")
	st, _, page := fetchPage(t, closed.browser(t), "POST", closed.base+"/dashboard/login",
		url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {form.Get("password")}})
	assert.Equal(t, 503, st)
	assert.Contains(t, page, "Signing in is unavailable for a moment")
	res, err = degrade.http.PostForm(degrade.base+"/oauth/token", form)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode, "degrade: sign-in goes on")

	fault(t, "GATEHOUSE_FAULT_REDIS_START")
	restarted = true
	require.Eventually(t, func() bool { return closed.do("GET", "/v1/customers", key, nil).status == 200 }, 30*time.Second, 200*time.Millisecond,
		"the fail-closed server did not recover")
	// Redis kept nothing (--save ""), so the shared count starts again;
	// both instances count against it once more.
	require.Eventually(t, func() bool {
		a, b := remaining(closed), remaining(degrade)
		return b == a-1
	}, 30*time.Second, 200*time.Millisecond, "the instances no longer share one budget")
	assert.NotContains(t, closed.logs()+degrade.logs(), "panic")
}
