package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisScript decides every window of a policy in one round trip, with
// Redis's clock (TIME), all or nothing. KEYS are the per-window counters
// of one principal (one hash slot, thanks to the {…} tag); ARGV[1] is the
// cost, then LIMIT and PERIOD_MS for each window. A counter is created in
// its window with PEXPIREAT at the window's end, so it disappears exactly
// when the window resets: no immortal keys, and its existence means "this
// window". It returns {allowed, now_ms, used_1, reset_ms_1, …}.
const redisScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local n = #KEYS
local used = {}
local allowed = 1
for i = 1, n do
  used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used[i] + cost > tonumber(ARGV[2*i]) then allowed = 0 end
end
local res = {allowed, now}
for i = 1, n do
  local period = tonumber(ARGV[2*i+1])
  local reset = (math.floor(now / period) + 1) * period
  local u = used[i]
  if allowed == 1 then
    u = redis.call('INCRBY', KEYS[i], cost)
    if u == cost then redis.call('PEXPIREAT', KEYS[i], reset) end
  end
  res[#res+1] = u
  res[#res+1] = reset
end
return res
`

// Redis is a limiter shared by every instance that points at the same
// Redis: each decision is one EVALSHA of a Lua script that checks and
// counts every window of the policy atomically, with time taken from
// Redis, so instances with skewed clocks still agree. Keys carry a hash
// tag ({key}) so a principal's windows share a Redis Cluster slot.
type Redis struct {
	client redis.Scripter
	prefix string
	script *redis.Script
}

var _ Limiter = (*Redis)(nil)

// RedisConfig holds the optional settings of [NewRedis].
type RedisConfig struct {
	// Prefix starts every Redis key. Default: "gatehouse:rl:".
	Prefix string
}

// NewRedis returns a limiter over client (a *redis.Client,
// *redis.ClusterClient or anything that runs scripts).
func NewRedis(client redis.Scripter, cfg RedisConfig) (*Redis, error) {
	if client == nil {
		return nil, errors.New("ratelimit: NewRedis needs a client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "gatehouse:rl:"
	}
	return &Redis{client: client, prefix: cfg.Prefix, script: redis.NewScript(redisScript)}, nil
}

// Allow implements [Limiter]. Errors are failures to reach Redis or run
// the script; see [Failover] for what to do then.
func (l *Redis) Allow(ctx context.Context, key string, p Policy, cost int64) (Result, error) {
	n := len(p.Windows)
	if n == 0 || n > MaxWindows {
		return Result{}, fmt.Errorf("ratelimit: policy %q has %d windows", p.Name, n)
	}
	var keysArr [MaxWindows]string
	var argsArr [1 + 2*MaxWindows]any
	keys, args := keysArr[:n], argsArr[:1+2*n]
	args[0] = cost
	tagged := l.prefix + "{" + key + "}:"
	for i, w := range p.Windows {
		ms := w.Period.Milliseconds()
		keys[i] = tagged + strconv.FormatInt(ms, 10)
		args[1+2*i] = w.Limit
		args[2+2*i] = ms
	}
	vals, err := l.script.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(vals) != 2+2*n {
		return Result{}, fmt.Errorf("ratelimit: redis: unexpected reply of %d values", len(vals))
	}
	now := time.UnixMilli(vals[1])
	var used [MaxWindows]int64
	var resets [MaxWindows]time.Time
	for i := range n {
		used[i] = vals[2+2*i]
		resets[i] = time.UnixMilli(vals[3+2*i])
	}
	var r Result
	if vals[0] == 1 {
		// used already includes this request: decide on the counts before it.
		for i := range n {
			used[i] -= cost
		}
	}
	decide(p, used[:n], resets[:n], now, cost, &r)
	if r.Allowed != (vals[0] == 1) {
		return Result{}, errors.New("ratelimit: redis: script and client disagree")
	}
	return r, nil
}
