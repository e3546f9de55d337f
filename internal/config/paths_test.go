package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildPathsContainment: a build context or Dockerfile that resolves
// outside the project directory is refused, at the line that set it.
func TestBuildPathsContainment(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	outside := t.TempDir() // stands for the runner's home
	project := filepath.Join(ws, "project")
	for _, d := range []string{"project/etl/docker", "project/sub", "secret-dir"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"project/etl/Dockerfile": "FROM scratch\n", "project/etl/docker/Dockerfile.prod": "FROM scratch\n", filepath.Join("..", filepath.Base(outside), "id_rsa"): "KEY"} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"project/up":                 "..",                                // a committed symlink to an ancestor
		"project/self":               ".",                                 // to the project itself: fine
		"project/home":               outside,                             // absolute, out of the repository
		"project/etl/Dockerfile.key": filepath.Join(outside, "id_rsa"),    // a Dockerfile that is a secret
		"project/etl/dangling":       filepath.Join(outside, "not-there"), // dangling, pointing out
		"project/sub/loop":           "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	const doc = `locations:
  - location_name: loc
    code_source: {package_name: loc}
    build:
      registry: r.example/app
      directory: %DIR%
      dockerfile: %DF%
`
	tests := []struct {
		name, dir, dockerfile string
		wantLine              int    // 0: no error
		want                  string // in the error
	}{
		{"plain", "./etl", "", 0, ""},
		{"dockerfile in a subdirectory", "etl", "docker/Dockerfile.prod", 0, ""},
		{"project itself", ".", "etl/Dockerfile", 0, ""},
		{"symlink to the project", "self/etl", "", 0, ""},
		{"absolute inside", filepath.Join(project, "etl"), "", 0, ""},
		{"missing inside (the builder says so)", "./nope", "", 0, ""},
		{"dot-dot", "..", "", 6, "a build context must be inside the project directory"},
		{"dot-dot inside a path", "etl/../../secret-dir", "", 6, "a build context must be inside the project directory"},
		{"absolute outside", outside, "", 6, "resolves to " + outside},
		{"root", "/", "", 6, "a build context must be inside the project directory"},
		{"symlink to an ancestor", "up", "", 6, "a build context must be inside the project directory"},
		{"symlink to an ancestor, deeper", "up/secret-dir", "", 6, "a build context must be inside the project directory"},
		{"absolute symlink out", "home", "", 6, "a build context must be inside the project directory"},
		{"dockerfile dot-dot", "etl", "../../secret-dir/Dockerfile", 7, "build.dockerfile"},
		{"dockerfile absolute", "etl", filepath.Join(outside, "id_rsa"), 7, "a Dockerfile must be inside the project directory"},
		{"dockerfile symlink to a secret", "etl", "Dockerfile.key", 7, "a Dockerfile must be inside the project directory"},
		{"dangling symlink out", "etl", "dangling", 7, "a Dockerfile must be inside the project directory"},
		{"symlink loop", "sub/loop", "", 6, "cannot be resolved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			y := strings.ReplaceAll(doc, "%DIR%", quoteYAML(tc.dir))
			if tc.dockerfile == "" {
				y = strings.Replace(y, "      dockerfile: %DF%\n", "", 1)
			} else {
				y = strings.ReplaceAll(y, "%DF%", quoteYAML(tc.dockerfile))
			}
			f, err := Parse("dagster_cloud.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			paths, err := f.BuildPaths(f.Locations[0], project, "Dockerfile")
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if rel, rerr := filepath.Rel(project, paths.ContextDir); rerr != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("context %s is outside %s", paths.ContextDir, project)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line != tc.wantLine || ce.File != "dagster_cloud.yaml" || !strings.Contains(ce.Msg, tc.want) {
				t.Fatalf("err = %v (want line %d, %q)", err, tc.wantLine, tc.want)
			}
			if strings.Contains(err.Error(), "KEY") {
				t.Errorf("the error shows the secret file's content: %v", err)
			}
		})
	}
}

// TestBuildPathsFromDefaults: a directory set in defaults.build is blamed
// on its own line.
func TestBuildPathsFromDefaults(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	f, err := Parse("dagster_cloud.yaml", []byte(`defaults:
  build:
    directory: ../..
    registry: r.example/app
locations:
  - location_name: a
    code_source: {package_name: a}
`))
	if err != nil {
		t.Fatal(err)
	}
	var ce *Error
	if _, err := f.BuildPaths(f.Locations[0], project, "Dockerfile"); !errors.As(err, &ce) || ce.Line != 3 {
		t.Fatalf("err = %v, want line 3", err)
	}
	// The Dockerfile input is named when it is the one that escapes.
	f, _ = Parse("dagster_cloud.yaml", []byte("locations:\n  - location_name: a\n    code_source: {package_name: a}\n    build: {registry: r.example/app}\n"))
	if _, err := f.BuildPaths(f.Locations[0], project, "../../etc/passwd"); !errors.As(err, &ce) || ce.Line != 2 || !strings.Contains(ce.Msg, "dockerfile input") {
		t.Fatalf("err = %v, want line 2 naming the dockerfile input", err)
	}
}

func quoteYAML(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
