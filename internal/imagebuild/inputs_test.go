package imagebuild

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeInspector answers DistributionInspect from a map of normalized references to digests.
type fakeInspector struct {
	mu      sync.Mutex
	digests map[string]string // "docker.io/library/python:3.12" → "sha256:…"
	calls   []string          // references asked for
	auths   []string          // their encoded credentials
}

func (f *fakeInspector) DistributionInspect(_ context.Context, ref, enc string) (registry.DistributionInspect, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ref)
	f.auths = append(f.auths, enc)
	d, ok := f.digests[ref]
	if !ok {
		return registry.DistributionInspect{}, fmt.Errorf("Error response from daemon: manifest unknown: %s", ref)
	}
	return registry.DistributionInspect{Descriptor: ocispec.Descriptor{Digest: digest.Digest(d)}}, nil
}

func fakeDigest(s string) string { return digest.FromString(s).String() }

// writeContextFiles writes files (path → content; a content starting with "->" makes a symlink to the
// rest) under dir.
func writeContextFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			_ = os.Remove(full)
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// inputsFixture is a build context and Spec that the digest table tests change one thing of.
func inputsFixture(t *testing.T) (string, Spec, *fakeInspector) {
	t.Helper()
	dir := t.TempDir()
	writeContextFiles(t, dir, map[string]string{
		"Dockerfile":        "FROM python:3.12-slim AS app\nCOPY . /app\n",
		".dockerignore":     "ignored/\n*.log\n",
		"app.py":            "print('hi')\n",
		"pkg/mod.py":        "X = 1\n",
		"pkg/data/big.bin":  strings.Repeat("0123456789", 10000),
		"current":           "->app.py",
		"ignored/cache.txt": "cache v1",
		"debug.log":         "log v1",
	})
	s := Spec{
		ContextDir: dir,
		Tags:       []string{"127.0.0.1:5000/acme/app:abc-1-1"},
		Labels: map[string]string{
			"org.opencontainers.image.source":   "https://github.com/acme/app",
			"org.opencontainers.image.revision": "aaaaaaaa",
			"branch":                            "main",
			"dev.dagster.location":              "app",
		},
		BuildArgs: map[string]string{"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"},
		Secrets:   map[string][]byte{"pip_token": []byte("s3cret")},
		SSH:       []string{"default"},
		CacheFrom: []string{"127.0.0.1:5000/acme/app:buildcache"},
	}
	fake := &fakeInspector{digests: map[string]string{"docker.io/library/python:3.12-slim": fakeDigest("python v1")}}
	return dir, s, fake
}

func mustInputsDigest(t *testing.T, fake *fakeInspector, s Spec) Inputs {
	t.Helper()
	in, err := InputsDigest(context.Background(), fake, s)
	if err != nil {
		t.Fatalf("InputsDigest: %v", err)
	}
	if len(in.Digest) != 64 {
		t.Fatalf("digest %q is not hex SHA-256", in.Digest)
	}
	return in
}

func TestInputsDigest(t *testing.T) {
	later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		change func(t *testing.T, dir string, s *Spec, f *fakeInspector)
		same   bool
	}{
		{"nothing", func(*testing.T, string, *Spec, *fakeInspector) {}, true},
		{"mtime only", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			for _, p := range []string{"app.py", "pkg/mod.py", "pkg", "Dockerfile", "."} {
				if err := os.Chtimes(filepath.Join(dir, p), later, later); err != nil {
					t.Fatal(err)
				}
			}
		}, true},
		{"owner only", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Lchown(filepath.Join(dir, "app.py"), 1234, 5678); err != nil {
				t.Skipf("cannot chown (not root?): %v", err)
			}
		}, true},
		{"ignored file changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"ignored/cache.txt": "cache v2", "debug.log": "log v2"})
		}, true},
		{"ignored file added", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"ignored/new/file.txt": "x", "trace.log": "y"})
		}, true},
		{"build args map rebuilt in another order", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			args := map[string]string{}
			for _, k := range []string{"E", "D", "C", "B", "A"} {
				args[k] = s.BuildArgs[k]
			}
			s.BuildArgs = args
		}, true},
		{"per-run labels changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Labels["org.opencontainers.image.revision"] = "bbbbbbbb"
			s.Labels["branch"] = "feature/x"
			s.Labels["org.opencontainers.image.created"] = "2030-01-01T00:00:00Z"
		}, true},
		{"secret value changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Secrets["pip_token"] = []byte("other")
		}, true},
		{"ssh agent path changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.SSH = []string{"default=/run/other-agent.sock"}
		}, true},
		{"tags, cache and credentials changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Tags = []string{"127.0.0.1:5000/acme/app:def-2-1"}
			s.CacheFrom = nil
			s.PullAuth = map[string]registry.AuthConfig{"ghcr.io": {Username: "u", Password: "p"}}
		}, true},

		{"file content changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"pkg/mod.py": "X = 2\n"})
		}, false},
		{"one byte of a large file changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"pkg/data/big.bin": strings.Repeat("0123456789", 9999) + "0123456780"})
		}, false},
		{"file mode changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Chmod(filepath.Join(dir, "app.py"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"directory mode changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Chmod(filepath.Join(dir, "pkg"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"symlink target changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"current": "->pkg/mod.py"})
		}, false},
		{"file added that only a root pattern would ignore", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"pkg/trace.log": "*.log excludes root files only"})
		}, false},
		{"file added", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"pkg/new.py": ""})
		}, false},
		{"empty directory added", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file renamed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Rename(filepath.Join(dir, "pkg/mod.py"), filepath.Join(dir, "pkg/mod2.py")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file removed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			if err := os.Remove(filepath.Join(dir, "pkg/mod.py")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{".dockerignore changed to let a file in", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{".dockerignore": "ignored/\n"})
		}, false},
		{"Dockerfile changed", func(t *testing.T, dir string, _ *Spec, _ *fakeInspector) {
			writeContextFiles(t, dir, map[string]string{"Dockerfile": "FROM python:3.12-slim AS app\nCOPY . /srv\n"})
		}, false},
		{"other Dockerfile path with the same content", func(t *testing.T, dir string, s *Spec, _ *fakeInspector) {
			b, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			writeContextFiles(t, dir, map[string]string{"docker/Dockerfile.prod": string(b)})
			s.Dockerfile = "docker/Dockerfile.prod"
		}, false},
		{"build arg value changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.BuildArgs["C"] = "33"
		}, false},
		{"build arg added", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.BuildArgs["F"] = ""
		}, false},
		{"secret id changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Secrets = map[string][]byte{"npm_token": []byte("s3cret")}
		}, false},
		{"ssh id added", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.SSH = append(s.SSH, "github=/tmp/key")
		}, false},
		{"target set", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Target = "app"
		}, false},
		{"platform set", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Platform = "linux/amd64"
		}, false},
		{"inline cache turned off", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.InlineCache = !s.InlineCache
		}, false},
		{"location label changed", func(_ *testing.T, _ string, s *Spec, _ *fakeInspector) {
			s.Labels["dev.dagster.location"] = "etl"
		}, false},
		{"FROM image moved to a new digest", func(_ *testing.T, _ string, _ *Spec, f *fakeInspector) {
			f.digests["docker.io/library/python:3.12-slim"] = fakeDigest("python v2")
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, s, fake := inputsFixture(t)
			before := mustInputsDigest(t, fake, s)
			tc.change(t, dir, &s, fake)
			after := mustInputsDigest(t, fake, s)
			if same := before.Digest == after.Digest; same != tc.same {
				t.Errorf("digest same = %v, want %v\nbefore:\n  %s\nafter:\n  %s", same, tc.same,
					strings.Join(before.Items, "\n  "), strings.Join(after.Items, "\n  "))
			}
		})
	}
}

func TestInputsDigestItems(t *testing.T) {
	_, s, fake := inputsFixture(t)
	in := mustInputsDigest(t, fake, s)
	enc, _ := json.Marshal(in.Items)
	if in.Digest != inputsSHA256(enc) {
		t.Errorf("Digest is not the SHA-256 of the items")
	}
	if in.Tag() != "inputs-"+in.Digest || len(in.Tag()) > 128 {
		t.Errorf("Tag() = %q", in.Tag())
	}
	all := strings.Join(in.Items, "\n")
	for _, want := range []string{
		"version: " + inputsVersion,
		"dockerfile: Dockerfile, ",
		`build-arg: "A" (value sha256:`,
		`label: "dev.dagster.location"="app"`,
		`secret: "pip_token"`,
		`ssh: "default"`,
		"image: docker.io/library/python:3.12-slim " + fakeDigest("python v1") + " (resolved)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("items lack %q:\n%s", want, all)
		}
	}
	for _, bad := range []string{"s3cret", "aaaaaaaa", `"branch"`, "ignored/", "debug.log"} {
		if strings.Contains(all, bad) {
			t.Errorf("items contain %q:\n%s", bad, all)
		}
	}
	// Dockerfile, .dockerignore, app.py, current (symlink), pkg/mod.py, pkg/data/big.bin.
	if c := in.Context; c.Files != 5 || c.Symlinks != 1 || c.Dirs != 2 || c.Bytes == 0 {
		t.Errorf("context summary = %+v, want 5 files, 1 symlink, 2 directories", c)
	}
	if !slices.Equal(fake.calls, []string{"docker.io/library/python:3.12-slim"}) {
		t.Errorf("asked the daemon for %v", fake.calls)
	}
}

func TestInputsDigestGeneratedDockerfile(t *testing.T) {
	dir, s, fake := inputsFixture(t)
	s.DockerfileContent = []byte("FROM python:3.12-slim\nCOPY . /app\n")
	a := mustInputsDigest(t, fake, s)
	// The directory's own Dockerfile is an ordinary context file then.
	writeContextFiles(t, dir, map[string]string{"ignored/x": "y"})
	if b := mustInputsDigest(t, fake, s); b.Digest != a.Digest {
		t.Errorf("an ignored file changed the digest")
	}
	s.DockerfileContent = []byte("FROM python:3.12-slim\nCOPY . /srv\n")
	if b := mustInputsDigest(t, fake, s); b.Digest == a.Digest {
		t.Errorf("a different generated Dockerfile kept the digest")
	}
	if !strings.Contains(strings.Join(a.Items, "\n"), "dockerfile: generated, ") {
		t.Errorf("items do not name the generated Dockerfile: %v", a.Items)
	}
}

func TestInputsDigestUnresolvedImage(t *testing.T) {
	_, s, fake := inputsFixture(t)
	delete(fake.digests, "docker.io/library/python:3.12-slim")
	_, err := InputsDigest(context.Background(), fake, s)
	var ue *UnresolvedImageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T), want an *UnresolvedImageError", err, err)
	}
	if ue.Image != "python:3.12-slim" || !strings.Contains(err.Error(), `FROM in stage "app"`) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("error does not say which image, where and why: %v", err)
	}
}

func TestInputsDigestBadContext(t *testing.T) {
	_, s, fake := inputsFixture(t)
	s.Dockerfile = "missing.Dockerfile"
	if _, err := InputsDigest(context.Background(), fake, s); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("error = %v, want the builder's Dockerfile-not-found error", err)
	}
}

func TestInputsDigestCancelled(t *testing.T) {
	_, s, fake := inputsFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := InputsDigest(ctx, fake, s); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestResolveImageCredentials(t *testing.T) {
	auths := map[string]registry.AuthConfig{
		"ghcr.io":                     {Username: "ghuser", Password: "ghpass", ServerAddress: "ghcr.io"},
		"https://index.docker.io/v1/": {Username: "hubuser", Password: "hubpass"},
	}
	pinned := "ghcr.io/acme/base@" + fakeDigest("pinned")
	fake := &fakeInspector{digests: map[string]string{
		"ghcr.io/acme/base:1":               fakeDigest("ghcr"),
		"docker.io/library/python:latest":   fakeDigest("hub"),
		"registry.example.com/team/img:2.0": fakeDigest("anon"),
	}}
	tests := []struct {
		ref, wantName, wantDigest, wantUser string
		pinned                              bool
	}{
		{"ghcr.io/acme/base:1", "ghcr.io/acme/base:1", fakeDigest("ghcr"), "ghuser", false},
		{"python", "docker.io/library/python:latest", fakeDigest("hub"), "hubuser", false},
		{"registry.example.com/team/img:2.0", "registry.example.com/team/img:2.0", fakeDigest("anon"), "", false},
		{pinned, pinned, fakeDigest("pinned"), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			fake.calls, fake.auths = nil, nil
			name, d, isPinned, err := resolveImage(context.Background(), fake, tc.ref, auths)
			if err != nil {
				t.Fatal(err)
			}
			if name != tc.wantName || d != tc.wantDigest || isPinned != tc.pinned {
				t.Errorf("resolveImage = %s %s pinned=%v, want %s %s pinned=%v", name, d, isPinned, tc.wantName, tc.wantDigest, tc.pinned)
			}
			if tc.pinned {
				if len(fake.calls) != 0 {
					t.Errorf("asked the daemon for a pinned image: %v", fake.calls)
				}
				return
			}
			var got registry.AuthConfig
			if enc := fake.auths[0]; enc != "" {
				b, err := base64.URLEncoding.DecodeString(enc)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
			}
			if got.Username != tc.wantUser {
				t.Errorf("credentials sent for %s: user %q, want %q", tc.ref, got.Username, tc.wantUser)
			}
		})
	}
}

func TestResolveImageRedactsPassword(t *testing.T) {
	auths := map[string]registry.AuthConfig{"ghcr.io": {Username: "u", Password: "hunter2-secret"}}
	_, _, _, err := resolveImage(context.Background(), failingInspector{}, "ghcr.io/a/b:1", auths)
	if err == nil || strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error = %v; want one without the password", err)
	}
}

type failingInspector struct{}

func (failingInspector) DistributionInspect(_ context.Context, _, enc string) (registry.DistributionInspect, error) {
	b, _ := base64.URLEncoding.DecodeString(enc)
	return registry.DistributionInspect{}, fmt.Errorf("unauthorized: credentials %s refused", b)
}
