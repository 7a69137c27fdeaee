package oauth

import (
	"context"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
)

// Token prefixes. They let secret scanners find leaked tokens and let the
// authenticator chain tell an access token from an API key at a glance.
const (
	PrefixAccessToken  = "gate_at_"
	PrefixRefreshToken = "gate_rt_"
	PrefixCode         = "gate_ac_"
)

// prefixedStrategy wraps fosite's unprefixed HMAC strategy with our
// prefixes (fosite's own prefixed strategy hard-codes "ory_").
type prefixedStrategy struct {
	*oauth2.HMACSHAStrategyUnPrefixed
}

var _ oauth2.CoreStrategy = prefixedStrategy{}

func newStrategy(cfg *fosite.Config) prefixedStrategy {
	return prefixedStrategy{oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: cfg}, cfg)}
}

func add(prefix, token string) string {
	if token == "" {
		return ""
	}
	return prefix + token
}

func (s prefixedStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	return s.HMACSHAStrategyUnPrefixed.AccessTokenSignature(ctx, strings.TrimPrefix(token, PrefixAccessToken))
}

func (s prefixedStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	t, sig, err := s.HMACSHAStrategyUnPrefixed.GenerateAccessToken(ctx, r)
	return add(PrefixAccessToken, t), sig, err
}

func (s prefixedStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateAccessToken(ctx, r, strings.TrimPrefix(token, PrefixAccessToken))
}

func (s prefixedStrategy) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.HMACSHAStrategyUnPrefixed.RefreshTokenSignature(ctx, strings.TrimPrefix(token, PrefixRefreshToken))
}

func (s prefixedStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	t, sig, err := s.HMACSHAStrategyUnPrefixed.GenerateRefreshToken(ctx, r)
	return add(PrefixRefreshToken, t), sig, err
}

func (s prefixedStrategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateRefreshToken(ctx, r, strings.TrimPrefix(token, PrefixRefreshToken))
}

func (s prefixedStrategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.HMACSHAStrategyUnPrefixed.AuthorizeCodeSignature(ctx, strings.TrimPrefix(token, PrefixCode))
}

func (s prefixedStrategy) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	t, sig, err := s.HMACSHAStrategyUnPrefixed.GenerateAuthorizeCode(ctx, r)
	return add(PrefixCode, t), sig, err
}

func (s prefixedStrategy) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	return s.HMACSHAStrategyUnPrefixed.ValidateAuthorizeCode(ctx, r, strings.TrimPrefix(token, PrefixCode))
}
