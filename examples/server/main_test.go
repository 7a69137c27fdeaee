package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newHandler(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	assert.JSONEq(t, `{"status":"ok"}`, string(body))
	assert.NotEmpty(t, res.Header.Get("X-Request-Id"))

	res, err = http.Get(srv.URL + "/nowhere")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, 404, res.StatusCode)
}
