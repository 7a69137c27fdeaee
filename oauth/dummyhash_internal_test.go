package oauth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// TestDummyHashUsesTheProvidersParams: the hash an unknown account's
// password is checked against has the provider's argon2id parameters, so
// that "no such user" costs what "wrong password" costs. (It had the
// defaults, whatever PasswordParams said: with other parameters the time
// of a sign-in told which emails have accounts.)
func TestDummyHashUsesTheProvidersParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		params PasswordParams
		want   string
	}{
		{PasswordParams{Time: 1, Memory: 64, Threads: 1}, "$argon2id$v=19$m=64,t=1,p=1$"},
		{PasswordParams{Time: 2, Memory: 128, Threads: 2}, "$argon2id$v=19$m=128,t=2,p=2$"},
		{PasswordParams{}, "$argon2id$v=19$m=19456,t=2,p=1$"}, // DefaultPasswordParams
	} {
		p, err := New(memory.New(), Config{Issuer: "https://id.example", Secret: make([]byte, 32), PasswordParams: tc.params})
		require.NoError(t, err)
		assert.Contains(t, p.dummyHash, tc.want, "%+v", tc.params)
		user, err := HashPassword("x", p.cfg.PasswordParams)
		require.NoError(t, err)
		assert.Equal(t, user[:len(tc.want)], p.dummyHash[:len(tc.want)], "the same parameters as a user's hash")
	}
}
