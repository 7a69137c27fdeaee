package testenv

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// ChromiumEnv overrides the browser the browser tests start.
const ChromiumEnv = "GATEHOUSE_TEST_CHROMIUM"

// Chromium returns the path of a Chromium (or Chrome) binary for headless
// browser tests: $GATEHOUSE_TEST_CHROMIUM, or chromium, chromium-browser,
// google-chrome on the PATH. When there is none the test is skipped, or
// fails when CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			unavailable(t, "Chromium", "apt-get install -y chromium", err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	unavailable(t, "Chromium", "apt-get install -y chromium", errors.New("no chromium on the PATH"))
	return ""
}
