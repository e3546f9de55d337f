package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
)

// Tests of builds with a generated Dockerfile (Spec.DockerfileContent) that need no daemon. The
// Docker-backed ones are in generated_docker_test.go.

const generatedDockerfile = "FROM scratch\nLABEL generated=yes\nCOPY . /app\n"

// userDockerfile is the context's own Dockerfile, which a build with a generated one must
// neither use nor change.
const userDockerfile = "FROM dbd-test/the-user-dockerfile-must-not-be-used\n"

// takenName is a file of the context named like a generated Dockerfile of the classic tar.
const takenName = generatedDockerfilePrefix + "taken"

// tarFile is an entry of a tar: its type, content or link target, and owner.
type tarFile struct {
	typ      byte
	body     string
	linkname string
	uid, gid int
}

// readTar reads a tar stream into its entries by name, directories included.
func readTar(t *testing.T, r io.Reader) map[string]tarFile {
	t.Helper()
	out := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[h.Name]; dup {
			t.Errorf("the tar holds %s twice", h.Name)
		}
		out[h.Name] = tarFile{typ: h.Typeflag, body: string(body), linkname: h.Linkname, uid: h.Uid, gid: h.Gid}
	}
}

// fileNames returns the names of the entries that are not directories, sorted.
func fileNames(entries map[string]tarFile) []string {
	var names []string
	for n, e := range entries {
		if e.typ != tar.TypeDir {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// generatedContextDir writes a context holding its own Dockerfile, a file named like a
// generated Dockerfile, an app directory with a symlink to a host file, a secret.txt, and, if
// ignore is not empty, a .dockerignore with that content. It returns the directory and the
// symlink's target.
func generatedContextDir(t *testing.T, ignore string) (dir, hostFile string) {
	t.Helper()
	hostFile = filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(hostFile, []byte("PRIVATE KEY MATERIAL"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	files := map[string]string{
		"Dockerfile":  userDockerfile,
		takenName:     "a file of the user's that looks like a generated Dockerfile\n",
		"app/main.py": "print('hi')\n",
		"secret.txt":  "not for the image\n",
	}
	if ignore != "" {
		files[".dockerignore"] = ignore
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(hostFile, filepath.Join(dir, "app", "link")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // files of another owner must still travel as 0:0
		if err := os.Lchown(filepath.Join(dir, "app", "main.py"), 1234, 1234); err != nil {
			t.Fatal(err)
		}
	}
	return dir, hostFile
}

// snapshotDir describes every entry of dir (type, mode, time, content or link target), so that
// a test can tell whether anything in it changed.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String() + " " + fi.ModTime().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sequence returns a name source that gives names in turn.
func sequence(names ...string) func() string {
	return func() string {
		n := names[0]
		names = names[1:]
		return n
	}
}

// classicSees returns the files of a context tar that COPY sees with the classic builder: the
// daemon reads the Dockerfile, then removes .dockerignore and the Dockerfile if .dockerignore
// lists them (moby's builder/remotecontext.removeDockerfile).
func classicSees(t *testing.T, entries map[string]tarFile, dockerfile string) []string {
	t.Helper()
	seen := maps.Clone(entries)
	if ig, ok := entries[".dockerignore"]; ok {
		patterns, err := ignorefile.ReadAll(strings.NewReader(ig.body))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{".dockerignore", dockerfile} {
			if m, _ := patternmatcher.MatchesOrParentMatches(f, patterns); m {
				delete(seen, f)
			}
		}
	}
	return fileNames(seen)
}

var generatedContextCases = []struct {
	name   string
	ignore string   // .dockerignore; empty for none
	copied []string // the files COPY . sees
}{
	{"no .dockerignore", "", []string{takenName, "Dockerfile", "app/link", "app/main.py", "secret.txt"}},
	// The generated Dockerfile is not in app, so * excludes it if it is in the context at all.
	{".dockerignore * !app", "*\n!app\n", []string{"app/link", "app/main.py"}},
	// The pattern that would bring the generated Dockerfile back is not last.
	// .dockerignore is copied too when it does not list itself, as with docker build.
	{".dockerignore re-includes the prefix", "secret.txt\n!" + generatedDockerfilePrefix + "*\n", []string{takenName, ".dockerignore", "Dockerfile", "app/link", "app/main.py"}},
}

// TestGeneratedDockerfileInContextTar checks the context tar of the classic builder: it holds
// the generated Dockerfile under a name no file of the context has (a user's file of the first
// name tried stays as it is), a .dockerignore that lists that name last, and the user's own
// Dockerfile as an ordinary file; symlinks are still links; the directory is not touched.
func TestGeneratedDockerfileInContextTar(t *testing.T) {
	t.Parallel()
	for _, tc := range generatedContextCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, hostFile := generatedContextDir(t, tc.ignore)
			before := snapshotDir(t, dir)
			free := generatedDockerfilePrefix + "free"
			bc, err := prepareGeneratedContext(dir, []byte(generatedDockerfile), sequence(takenName, free))
			if err != nil {
				t.Fatal(err)
			}
			if bc.dockerfile != free {
				t.Fatalf("the generated Dockerfile is sent as %q, want %q (%q is a file of the context)", bc.dockerfile, free, takenName)
			}
			if o := classicOptions(bc, Spec{Tags: []string{"x:y"}}); o.Dockerfile != free || o.RemoteContext != "" {
				t.Errorf("classic options name Dockerfile %q and remote %q, want %q and none", o.Dockerfile, o.RemoteContext, free)
			}
			rc, err := bc.tar()
			if err != nil {
				t.Fatal(err)
			}
			entries := readTar(t, rc)
			_ = rc.Close()

			for name, e := range entries {
				if e.uid != 0 || e.gid != 0 {
					t.Errorf("%s owned by %d:%d, want 0:0", name, e.uid, e.gid)
				}
				if strings.Contains(e.body, "PRIVATE KEY") {
					t.Errorf("%s carries the content of the symlinked host file", name)
				}
			}
			if e := entries[free]; e.typ != tar.TypeReg || e.body != generatedDockerfile {
				t.Errorf("%s in the tar = %+v, want the generated Dockerfile", free, e)
			}
			if e, ok := entries["Dockerfile"]; ok && e.body != userDockerfile {
				t.Errorf("the user's Dockerfile in the tar = %q, want %q", e.body, userDockerfile)
			}
			if e, ok := entries[takenName]; ok && strings.HasPrefix(e.body, "FROM") {
				t.Errorf("the user's %s was replaced: %q", takenName, e.body)
			}
			if e := entries["app/link"]; e.typ != tar.TypeSymlink || e.linkname != hostFile {
				t.Errorf("app/link = %+v, want a symlink to %s", e, hostFile)
			}
			ig := entries[".dockerignore"]
			wantIgnore := ".dockerignore\n" + free + "\n" // made up, listing itself
			if tc.ignore != "" {
				wantIgnore = tc.ignore + "\n" + free + "\n"
			}
			if ig.typ != tar.TypeReg || ig.body != wantIgnore {
				t.Errorf(".dockerignore in the tar = %+v, want %q", ig, wantIgnore)
			}
			if got := classicSees(t, entries, free); !slices.Equal(got, tc.copied) {
				t.Errorf("COPY would see %q, want %q", got, tc.copied)
			}
			if after := snapshotDir(t, dir); !maps.Equal(before, after) {
				t.Errorf("the context directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestGeneratedDockerfileSyncedDirs checks what a BuildKit build's session serves: the
// "dockerfile" directory holds only the generated Dockerfile, and the "context" directory, asked
// for as the Dockerfile frontend does (its .dockerignore first, then the rest with its
// patterns), holds the context's files and never the generated Dockerfile, with symlinks as
// links and everything owned by 0:0.
func TestGeneratedDockerfileSyncedDirs(t *testing.T) {
	t.Parallel()
	for _, tc := range generatedContextCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, hostFile := generatedContextDir(t, tc.ignore)
			before := snapshotDir(t, dir)
			bc, err := prepareGeneratedContext(dir, []byte(generatedDockerfile), randomDockerfileName)
			if err != nil {
				t.Fatal(err)
			}
			o := buildKitOptions(bc, Spec{Tags: []string{"x:y"}}, "sess")
			if o.RemoteContext != clientSessionRemote || o.Dockerfile != DefaultDockerfile {
				t.Errorf("BuildKit options name remote %q and Dockerfile %q, want %q and %q", o.RemoteContext, o.Dockerfile, clientSessionRemote, DefaultDockerfile)
			}
			dirs, err := bc.syncedDirs()
			if err != nil {
				t.Fatal(err)
			}
			if len(dirs) != 2 {
				t.Errorf("the session serves %d directories, want 2", len(dirs))
			}
			sync := func(name string, opt *fsutil.FilterOpt) map[string]tarFile {
				t.Helper()
				src, ok := dirs.LookupDir(name)
				if !ok {
					t.Fatalf("the session does not serve %q", name)
				}
				filtered, err := fsutil.NewFilterFS(src, opt)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := fsutil.WriteTar(context.Background(), filtered, &buf); err != nil {
					t.Fatalf("syncing %q: %v", name, err)
				}
				return readTar(t, &buf)
			}

			// What the frontend asks of "dockerfile" (dockerui.ReadEntrypoint), and all of it.
			for _, opt := range []*fsutil.FilterOpt{{FollowPaths: []string{"Dockerfile", "Dockerfile.dockerignore", "dockerfile"}}, {}} {
				got := sync(syncedDockerfileDir, opt)
				if len(got) != 1 || got["Dockerfile"].body != generatedDockerfile || got["Dockerfile"].typ != tar.TypeReg {
					t.Errorf("the dockerfile directory (filter %+v) holds %+v, want only the generated Dockerfile", opt, got)
				}
			}

			ignore := sync(syncedContextDir, &fsutil.FilterOpt{FollowPaths: []string{".dockerignore"}})
			if got := ignore[".dockerignore"].body; got != tc.ignore || len(fileNames(ignore)) > 1 {
				t.Errorf("the frontend reads .dockerignore %q (of %q), want %q", got, fileNames(ignore), tc.ignore)
			}
			patterns, err := ignorefile.ReadAll(strings.NewReader(tc.ignore))
			if err != nil {
				t.Fatal(err)
			}
			entries := sync(syncedContextDir, &fsutil.FilterOpt{ExcludePatterns: patterns})
			if got := fileNames(entries); !slices.Equal(got, tc.copied) {
				t.Errorf("the context holds %q, want %q", got, tc.copied)
			}
			for name, e := range entries {
				if e.body == generatedDockerfile {
					t.Errorf("the context holds the generated Dockerfile as %s", name)
				}
				if e.uid != 0 || e.gid != 0 {
					t.Errorf("%s owned by %d:%d, want 0:0", name, e.uid, e.gid)
				}
			}
			if e, ok := entries["Dockerfile"]; ok && e.body != userDockerfile {
				t.Errorf("the user's Dockerfile = %q, want %q", e.body, userDockerfile)
			}
			if e := entries["app/link"]; e.typ != tar.TypeSymlink || e.linkname != hostFile || e.body != "" {
				t.Errorf("app/link = %+v, want a symlink to %s", e, hostFile)
			}
			if after := snapshotDir(t, dir); !maps.Equal(before, after) {
				t.Errorf("the context directory changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestGeneratedDockerfileSpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // no Dockerfile: not needed with a generated one
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bc, err := prepareSpecContext(Spec{ContextDir: dir, DockerfileContent: []byte(generatedDockerfile)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bc.dockerfile, generatedDockerfilePrefix) || len(bc.dockerfile) != len(generatedDockerfilePrefix)+20 {
		t.Errorf("generated Dockerfile name %q, want %s and 20 hex digits", bc.dockerfile, generatedDockerfilePrefix)
	}
	if d := bc.describeDockerfile(); d != "a generated Dockerfile of 45 bytes" {
		t.Errorf("log names the Dockerfile %q", d)
	}

	b := NewBuilder(nil, nil) // the errors come before the daemon is asked
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"path and content", Spec{ContextDir: dir, Dockerfile: "Dockerfile", DockerfileContent: []byte(generatedDockerfile)}, "both a Dockerfile path (Dockerfile) and the content of a generated Dockerfile"},
		{"empty content", Spec{ContextDir: dir, DockerfileContent: []byte{}}, "the generated Dockerfile is empty"},
		{"blank content", Spec{ContextDir: dir, DockerfileContent: []byte(" \n\t\n")}, "the generated Dockerfile is empty"},
		{"nil content: the context's Dockerfile", Spec{ContextDir: dir}, "Dockerfile " + filepath.Join(bc.dir, "Dockerfile") + " not found"},
		{"no context", Spec{DockerfileContent: []byte(generatedDockerfile)}, "no build context directory given"},
	} {
		_, err := b.Build(context.Background(), Spec{ContextDir: tc.spec.ContextDir, Dockerfile: tc.spec.Dockerfile, DockerfileContent: tc.spec.DockerfileContent, Tags: []string{"x:y"}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

// TestGeneratedDockerfileNoFreeName: the name source is asked again while the context has a
// file of the name, and gives up in the end.
func TestGeneratedDockerfileNoFreeName(t *testing.T) {
	t.Parallel()
	dir, _ := generatedContextDir(t, "")
	_, err := prepareGeneratedContext(dir, []byte(generatedDockerfile), func() string { return takenName })
	if err == nil || !strings.Contains(err.Error(), "no free name for the generated Dockerfile") {
		t.Errorf("error = %v, want one about no free name", err)
	}
}

// TestBuildKitOptionsPathDockerfile: without generated content the context and the Dockerfile
// also come from the session, as `docker build` sends them: the request names the remote
// context "client-session" and the Dockerfile by its name in the session's "dockerfile"
// directory, which shows only that file.
func TestBuildKitOptionsPathDockerfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"docker/Dockerfile.prod": "FROM scratch\n",
		"docker/secret.txt":      "not for the dockerfile directory\n",
		"app.py":                 "print(1)\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc, err := prepareContext(dir, "docker/Dockerfile.prod")
	if err != nil {
		t.Fatal(err)
	}
	o := buildKitOptions(bc, Spec{Tags: []string{"x:y"}}, "sess")
	if o.RemoteContext != clientSessionRemote || o.Dockerfile != "Dockerfile.prod" || o.Version != build.BuilderBuildKit {
		t.Errorf("options name remote %q and Dockerfile %q", o.RemoteContext, o.Dockerfile)
	}
	dirs, err := bc.syncedDirs()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := dirs[syncedDockerfileDir].Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
		seen = append(seen, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"Dockerfile.prod"}) {
		t.Errorf("the dockerfile directory shows %v, want only Dockerfile.prod", seen)
	}
}

// TestSyncedContextAppliesDockerignore: the session serves the context without the files
// .dockerignore excludes, also when .dockerignore is a symlink out of the context directory
// (a monorepo's shared ignore file), which BuildKit cannot read through the session; the
// .dockerignore and the Dockerfile stay visible even when excluded, as `docker build` keeps them.
func TestSyncedContextAppliesDockerignore(t *testing.T) {
	t.Parallel()
	project := t.TempDir()
	dir := filepath.Join(project, "etl")
	for name, content := range map[string]string{
		"shared.dockerignore": ".git\n*.env\nDockerfile\n.dockerignore\n",
		"etl/Dockerfile":      "FROM scratch\nCOPY . /app\n",
		"etl/app.py":          "print(1)\n",
		"etl/prod.env":        "TOKEN=secret\n",
		"etl/.git/config":     "[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n",
	} {
		p := filepath.Join(project, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../shared.dockerignore", filepath.Join(dir, ".dockerignore")); err != nil {
		t.Fatal(err)
	}
	bc, err := prepareContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := bc.syncedDirs()
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := dirs[syncedContextDir].Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
		seen = append(seen, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if want := []string{".dockerignore", "Dockerfile", "app.py"}; !slices.Equal(seen, want) {
		t.Errorf("the session serves %v, want %v", seen, want)
	}
}
