package apikey_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
)

func newKey(t testing.TB, env gatehouse.Environment) string {
	t.Helper()
	m := newManager(t, memStore(), apikey.Config{})
	s, _, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "org", Environment: env})
	require.NoError(t, err)
	return s.Reveal()
}

func TestFormat(t *testing.T) {
	t.Parallel()
	key := newKey(t, gatehouse.Live)
	assert.Regexp(t, `^gate_live_[0-9A-Za-z]{39}$`, key)
	p, err := apikey.Parse(key)
	require.NoError(t, err)
	assert.Equal(t, "gate", p.Prefix)
	assert.Equal(t, gatehouse.Live, p.Environment)
	assert.Equal(t, "gate_live_…"+key[len(key)-4:], apikey.Display(key))
	assert.Equal(t, apikey.IDFor(key), apikey.IDFor(key))
	assert.Regexp(t, `^key_[0-9a-f]{20}$`, apikey.IDFor(key))

	test := newKey(t, gatehouse.Test)
	assert.True(t, strings.HasPrefix(test, "gate_test_"))
	assert.NotEqual(t, key, newKey(t, gatehouse.Live), "keys are random")
}

func TestParseRefusesDamagedKeys(t *testing.T) {
	t.Parallel()
	key := newKey(t, gatehouse.Live)
	flip := func(i int) string {
		b := []byte(key)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"truncated":      key[:len(key)-1],
		"extended":       key + "x",
		"typo in random": flip(15),
		"typo in sum":    flip(len(key) - 2),
		"env changed":    strings.Replace(key, "_live_", "_test_", 1),
		"bad env":        strings.Replace(key, "_live_", "_prod_", 1),
		"no prefix":      key[5:],
		"bad char":       key[:20] + "-" + key[21:],
		"empty":          "",
		"oauth token":    "gate_at_abc.def",
	}
	for name, k := range cases {
		_, err := apikey.Parse(k)
		assert.ErrorIs(t, err, apikey.ErrMalformed, name)
	}
}

func TestSecretRedactsItself(t *testing.T) {
	t.Parallel()
	m := newManager(t, memStore(), apikey.Config{})
	s, _, err := m.Create(t.Context(), apikey.CreateParams{OrganisationID: "org"})
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("created", "key", s)
	fmt.Fprintf(&buf, "%v %s %#v %+v", s, s, s, s)
	assert.NotContains(t, buf.String(), s.Reveal()[10:])
	assert.Contains(t, buf.String(), apikey.Display(s.Reveal()))
}

func FuzzParse(f *testing.F) {
	f.Add("gate_live_000000000000000000000000000000000000000")
	f.Add("gate_test_abc")
	f.Add("")
	f.Add("x_live_")
	m := newManager(f, memStore(), apikey.Config{})
	for _, env := range []gatehouse.Environment{gatehouse.Live, gatehouse.Test} {
		s, _, err := m.Create(f.Context(), apikey.CreateParams{OrganisationID: "o", Environment: env})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Reveal())
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, err := apikey.Parse(key)
		d := apikey.Display(key)
		if strings.Count(d, "…") != 1 {
			t.Fatalf("display %q of %q", d, key)
		}
		if err != nil {
			return
		}
		if !p.Environment.Valid() || !strings.HasPrefix(key, p.Prefix+"_"+string(p.Environment)+"_") {
			t.Fatalf("accepted %q as %+v", key, p)
		}
	})
}
