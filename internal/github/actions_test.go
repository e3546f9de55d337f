package github

import (
	"io"
	"testing"
)

func getter(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestContainerPath(t *testing.T) {
	t.Parallel()
	container := getter(map[string]string{"HOME": "/github/home", "RUNNER_TEMP": "/home/runner/work/_temp"})
	host := getter(map[string]string{"HOME": "/home/runner", "RUNNER_TEMP": "/home/runner/work/_temp"})
	tests := []struct {
		getenv func(string) string
		in     string
		want   string
	}{
		{container, "/home/runner/work/_temp/_github_home/.docker", "/github/home/.docker"},
		{container, "/home/runner/work/_temp/_github_home", "/github/home"},
		{container, "/home/runner/work/_temp/_github_homeX/.docker", "/home/runner/work/_temp/_github_homeX/.docker"},
		{container, "/elsewhere/.docker", "/elsewhere/.docker"},
		{container, "", ""},
		{host, "/home/runner/work/_temp/_github_home/.docker", "/home/runner/work/_temp/_github_home/.docker"},
	}
	for _, tc := range tests {
		if got := NewActions(tc.getenv, io.Discard, io.Discard, nil).ContainerPath(tc.in); got != tc.want {
			t.Errorf("ContainerPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
