package imagebuild

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tarEntries lists the regular files of the build context tar, with their owners.
func tarEntries(t *testing.T, bc *buildContext) map[string][2]int {
	t.Helper()
	rc, err := bc.tar()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string][2]int{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading context tar: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			got[h.Name] = [2]int{h.Uid, h.Gid}
		}
	}
	return got
}

func TestContextTarHonoursDockerignore(t *testing.T) {
	t.Parallel()
	bc, err := prepareContext(fixture(t, "simple"), "")
	if err != nil {
		t.Fatal(err)
	}
	if bc.dockerfile != "Dockerfile" {
		t.Errorf("dockerfile = %q, want Dockerfile", bc.dockerfile)
	}
	entries := tarEntries(t, bc)
	var names []string
	for n, owner := range entries {
		names = append(names, n)
		if owner != [2]int{0, 0} {
			t.Errorf("%s owned by %v, want 0:0", n, owner)
		}
	}
	slices.Sort(names)
	// The Dockerfile and .dockerignore are listed in .dockerignore but must still be sent.
	want := []string{".dockerignore", "Dockerfile", "app/main.py", "hello.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("context tar holds %q, want %q", names, want)
	}
}

func TestContextNestedDockerfile(t *testing.T) {
	t.Parallel()
	dir := fixture(t, "nested")
	for _, df := range []string{"docker/Dockerfile.prod", filepath.Join(dir, "docker", "Dockerfile.prod"), "./docker/../docker/Dockerfile.prod"} {
		bc, err := prepareContext(dir, df)
		if err != nil {
			t.Fatalf("Dockerfile %q: %v", df, err)
		}
		if bc.dockerfile != "docker/Dockerfile.prod" {
			t.Errorf("Dockerfile %q: in-context path %q, want docker/Dockerfile.prod", df, bc.dockerfile)
		}
	}
}

func TestContextErrors(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	notDir := filepath.Join(tmp, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(tmp, "Dockerfile")
	if err := os.WriteFile(outside, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(tmp, "ctx")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	badIgnore := filepath.Join(tmp, "badignore")
	if err := os.MkdirAll(badIgnore, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(badIgnore, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	_ = os.WriteFile(filepath.Join(badIgnore, ".dockerignore"), []byte("[\n"), 0o644)

	missing := filepath.Join(tmp, "nope")
	tests := []struct {
		name, dir, dockerfile string
		want                  []string
	}{
		{"missing context", missing, "", []string{"build context directory " + missing + " does not exist", "build.directory in dagster_cloud.yaml"}},
		{"empty context", "", "", []string{"no build context directory", "build.directory"}},
		{"context is a file", notDir, "", []string{notDir + " is not a directory"}},
		{"missing Dockerfile", ctxDir, "", []string{"Dockerfile " + filepath.Join(ctxDir, "Dockerfile") + " not found in build context " + ctxDir, "build.directory"}},
		{"missing custom Dockerfile", ctxDir, "docker/Dockerfile.dev", []string{filepath.Join(ctxDir, "docker/Dockerfile.dev") + " not found"}},
		{"Dockerfile outside (relative)", ctxDir, "../Dockerfile", []string{"outside the build context " + ctxDir}},
		{"Dockerfile outside (absolute)", ctxDir, outside, []string{"Dockerfile " + outside + " is outside the build context"}},
		{"Dockerfile is the context", ctxDir, ".", []string{"outside the build context"}},
		{"Dockerfile is a directory", tmp, "ctx", []string{"is a directory"}},
		{"bad .dockerignore pattern", badIgnore, "", []string{"invalid pattern in " + filepath.Join(badIgnore, ".dockerignore")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := prepareContext(tc.dir, tc.dockerfile)
			if err == nil {
				t.Fatal("prepareContext succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTrimBuildFilesFromExcludes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		excludes   []string
		dockerfile string
		want       []string
	}{
		{nil, "Dockerfile", nil},
		{[]string{"*.txt"}, "Dockerfile", []string{"*.txt"}},
		{[]string{"Dockerfile", ".dockerignore"}, "Dockerfile", []string{"Dockerfile", ".dockerignore", "!.dockerignore", "!Dockerfile"}},
		{[]string{"docker"}, "docker/Dockerfile.prod", []string{"docker", "!docker/Dockerfile.prod"}},
		{[]string{"*"}, "Dockerfile", []string{"*", "!.dockerignore", "!Dockerfile"}},
	}
	for _, tc := range tests {
		got := trimBuildFilesFromExcludes(slices.Clone(tc.excludes), tc.dockerfile)
		if !slices.Equal(got, tc.want) {
			t.Errorf("trimBuildFilesFromExcludes(%q, %q) = %q, want %q", tc.excludes, tc.dockerfile, got, tc.want)
		}
	}
}
