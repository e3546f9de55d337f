package action

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/github"
)

// TestContainerSSH: the paths of ssh entries are mapped to where the
// action sees them.
func TestContainerSSH(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": "/github/home", "RUNNER_TEMP": "/home/runner/work/_temp"}
	p := &pipeline{plat: github.NewActions(func(k string) string { return env[k] }, io.Discard, io.Discard, nil)}
	got := p.containerSSH([]string{"default", "gh=/home/runner/work/_temp/_github_home/a.sock,/github/workspace/key"})
	if !slices.Equal(got, []string{"default", "gh=/github/home/a.sock,/github/workspace/key"}) {
		t.Errorf("ssh = %q", got)
	}
}

func TestImageTags(t *testing.T) {
	t.Parallel()
	p := &pipeline{ci: &cicontext.Context{RunID: "77", RunAttempt: "2", Commit: cicontext.Commit{SHA: "0123456789abcdef0123"}}}
	loc := config.Location{Name: "ml_models"}
	if got := p.imageTag(loc, false); got != "0123456789ab-77-2" {
		t.Errorf("tag = %q", got)
	}
	if got := p.imageTag(loc, true); got != "0123456789ab-77-2-ml_models" {
		t.Errorf("shared tag = %q", got)
	}
	p.in.ImageTag = "v" + strings.Repeat("x", 127)
	got := p.imageTag(loc, true)
	if len(got) != 128 || got[len(got)-len("-ml_models"):] != "-ml_models" {
		t.Errorf("long tag %q (%d) lost its location suffix", got, len(got))
	}
	for _, pair := range [][2]string{{"acme/app", "docker.io/acme/app"}, {"index.docker.io/acme/app", "docker.io/acme/app"}} {
		if repository(pair[0]) != repository(pair[1]) {
			t.Errorf("%s and %s are one repository", pair[0], pair[1])
		}
	}
	if repository("ghcr.io/acme/app") == repository("ghcr.io/acme/other") {
		t.Error("different repositories compare equal")
	}
}
