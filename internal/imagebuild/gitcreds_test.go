package imagebuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitCredential finds the credentials a build context would send in
// .git/config (actions/checkout's header, a URL with a password), never
// shows their values, and honours .dockerignore as the build does.
func TestGitCredential(t *testing.T) {
	t.Parallel()
	// What actions/checkout writes with persist-credentials: true.
	const checkout = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n[remote \"origin\"]\n\turl = https://github.com/acme/data\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n" +
		"[http \"https://github.com/\"]\n\textraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0LXRva2Vu\n"
	tests := []struct {
		name, config, ignore, want string
		gitFile                    bool
	}{
		{name: "actions/checkout's header", config: checkout, want: "http.https://github.com/.extraheader"},
		{name: "a header for every URL, in other case", config: "[HTTP]\n\tExtraHeader = Authorization: Bearer abc\n", want: "HTTP.ExtraHeader"},
		{name: "a remote URL with a token", config: "[remote \"origin\"]\n\turl = https://x-access-token:ghs_abc@github.com/acme/data\n", want: "remote.origin.url"},
		{name: "insteadOf with a token", config: "[url \"https://user:tok@github.com/\"]\n\tinsteadOf = https://github.com/\n", want: "url.https://github.com/"},
		{name: "another header", config: "[http]\n\textraheader = X-Trace: 1\n"},
		{name: "persist-credentials: false", config: "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://github.com/acme/data\n"},
		{name: "excluded by .git", config: checkout, ignore: ".git\n"},
		{name: "excluded by .git/config", config: checkout, ignore: "# comment\n.git/config\n"},
		{name: "excluded by a wildcard", config: checkout, ignore: "**/.git\n"},
		{name: "re-included", config: checkout, ignore: ".git\n!.git/config\n", want: "http.https://github.com/.extraheader"},
		{name: "other files ignored", config: checkout, ignore: "node_modules\n*.pyc\n", want: "http.https://github.com/.extraheader"},
		{name: ".git is a file (a worktree)", gitFile: true},
		{name: "no .git"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			switch {
			case tc.gitFile:
				write(t, filepath.Join(dir, ".git"), "gitdir: /elsewhere/.git/worktrees/x\n")
			case tc.config != "":
				write(t, filepath.Join(dir, ".git", "config"), tc.config)
			}
			if tc.ignore != "" {
				write(t, filepath.Join(dir, ".dockerignore"), tc.ignore)
			}
			got, err := GitCredential(dir)
			if err != nil || got != tc.want {
				t.Errorf("GitCredential = %q, %v; want %q", got, err, tc.want)
			}
			for _, secret := range []string{"eC1hY2Nlc3M", "ghs_abc", "tok@", "Bearer abc"} {
				if strings.Contains(got, secret) {
					t.Errorf("%q shows a credential", got)
				}
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
