package action

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/github"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/secrets"
)

// TestContainerSSH: the paths of ssh entries are mapped to where the
// action sees them.
func TestContainerSSH(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": "/github/home", "RUNNER_TEMP": "/home/runner/work/_temp"}
	p := &pipeline{plat: github.NewActions(func(k string) string { return env[k] }, io.Discard, io.Discard, nil)}
	got, err := p.containerSSH([]string{"default", "gh=/home/runner/work/_temp/_github_home/a.sock,/github/workspace/key"})
	if err != nil || !slices.Equal(got, []string{"default", "gh=/github/home/a.sock,/github/workspace/key"}) {
		t.Errorf("ssh = %q, %v", got, err)
	}
}

// TestContainerSSHAgent: `default` (and an id without paths) is the job's
// ssh-agent: inside the action's container its socket is mapped the way
// explicit paths are when it is under the runner's temp home, and refused
// with what works when the container cannot see it; outside a container
// (the binary on a runner, GitLab) it is used as it is.
func TestContainerSSHAgent(t *testing.T) {
	t.Parallel()
	const temp = "/home/runner/work/_temp"
	tests := []struct {
		name    string
		env     map[string]string
		want    []string
		wantErr []string
	}{
		{name: "under the temp home", env: map[string]string{"HOME": "/github/home", "RUNNER_TEMP": temp, "SSH_AUTH_SOCK": temp + "/_github_home/agent.sock"},
			want: []string{"default=/github/home/agent.sock", "github=/github/home/agent.sock"}},
		{name: "already a container path", env: map[string]string{"HOME": "/github/home", "RUNNER_TEMP": temp, "SSH_AUTH_SOCK": "/github/home/agent.sock"},
			want: []string{"default=/github/home/agent.sock", "github=/github/home/agent.sock"}},
		{name: "the runner's /tmp", env: map[string]string{"HOME": "/github/home", "RUNNER_TEMP": temp, "SSH_AUTH_SOCK": "/tmp/ssh-XXXXabcd/agent.1234"},
			wantErr: []string{"Invalid input ssh", `"default" uses the job's ssh-agent`, "/tmp/ssh-XXXXabcd/agent.1234", "cannot see", "${{ runner.temp }}/_github_home/agent.sock", "ssh-auth-sock"}},
		{name: "not in a container", env: map[string]string{"HOME": "/home/runner", "RUNNER_TEMP": temp, "SSH_AUTH_SOCK": "/tmp/ssh-XXXXabcd/agent.1234"},
			want: []string{"default=/tmp/ssh-XXXXabcd/agent.1234", "github=/tmp/ssh-XXXXabcd/agent.1234"}},
		{name: "no agent", env: map[string]string{"HOME": "/github/home", "RUNNER_TEMP": temp},
			want: []string{"default", "github"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &pipeline{plat: github.NewActions(func(k string) string { return tc.env[k] }, io.Discard, io.Discard, nil), sec: secrets.New(nil)}
			got, err := p.containerSSH([]string{"default", "github"})
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("ssh = %q, want an error", got)
				}
				msg := fail(p.sec, err)
				for _, w := range tc.wantErr {
					if !strings.Contains(msg.Title+": "+msg.Msg, w) {
						t.Errorf("error %q: %q lacks %q", msg.Title, msg.Msg, w)
					}
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ssh = %q, %v; want %q", got, err, tc.want)
			}
		})
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
