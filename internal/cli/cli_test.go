package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, IO{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
	return result{code, out.String(), errOut.String()}
}

func TestActionErrorAnnotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(`{"ref":"refs/tags/v1","repository":{"full_name":"o/r"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": event,
		"INPUT_DAGSTER_CLOUD_API_TOKEN": "secret-token-value",
	})
	if r.code != 1 {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var errs []string
	for _, l := range lines {
		if strings.HasPrefix(l, "::error") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "push of tag v1 is not supported") {
		t.Errorf("annotations = %q", errs)
	}
	if !strings.HasPrefix(lines[0], "::add-mask::secret-token-value") {
		t.Errorf("the token was not masked first: %q", lines[0])
	}
}
