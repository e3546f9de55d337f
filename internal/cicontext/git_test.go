package cicontext

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The repositories here are built with go-git: the tests need no git
// binary, as the action's image has none.

var (
	jane = object.Signature{Name: "Jane Doe", Email: "jane@example.com", When: time.Unix(1700000000, 0).In(time.FixedZone("", 2*3600))}
	joe  = object.Signature{Name: "Joe Bloggs", Email: "583231+joe@users.noreply.github.com", When: time.Unix(1700000500, 0).UTC()}
)

type testRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newTestRepo(t *testing.T, dir string) *testRepo {
	t.Helper()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, repo: r}
}

// commit makes a commit on HEAD's branch; parents, when given, replace
// HEAD as the parents (a merge).
func (r *testRepo) commit(msg string, author, committer object.Signature, parents ...plumbing.Hash) plumbing.Hash {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &author, Committer: &committer, AllowEmptyCommits: true, Parents: parents})
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// store writes a commit object as given (for headers go-git's Worktree
// does not write).
func (r *testRepo) store(c *object.Commit) plumbing.Hash {
	r.t.Helper()
	obj := r.repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		r.t.Fatal(err)
	}
	h, err := r.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

func (r *testRepo) setConfig(t *testing.T, extra string) {
	t.Helper()
	path := filepath.Join(r.dir, ".git", "config")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "repositoryformatversion = 0", "repositoryformatversion = 1", 1)
	if err := os.WriteFile(path, []byte(s+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, dir, sha string) Commit {
	t.Helper()
	c, err := ReadGitLog(dir, sha)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadGitLog(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, t.TempDir())
	first := r.commit("Add assets\n\nLonger body.\n", jane, jane)
	// Authored by Joe, committed (later, in another zone) by Jane.
	second := r.commit("Add the sensors\nand the schedules\n\nBody line\n", joe, object.Signature{Name: "Jane Doe", Email: "jane@example.com", When: time.Unix(1700000900, 0).In(time.FixedZone("", -5*3600))})
	side := r.commit("Side", jane, jane, first)
	merge := r.commit("Merge branch 'side'\n\n* side:\n  Side\n", jane, jane, second, side)

	tests := []struct {
		name, rev  string
		sha        plumbing.Hash
		title, msg string
		author     object.Signature
		committed  int64
	}{
		{"first by SHA", first.String(), first, "Add assets", "Add assets\n\nLonger body.", jane, 1700000000},
		{"multi-line subject; author and committer differ", second.String(), second, "Add the sensors and the schedules",
			"Add the sensors\nand the schedules\n\nBody line", joe, 1700000900},
		{"merge commit", merge.String(), merge, "Merge branch 'side'", "Merge branch 'side'\n\n* side:\n  Side", jane, 1700000000},
		{"HEAD", "HEAD", merge, "Merge branch 'side'", "", jane, 1700000000},
		{"HEAD~1 (the first parent)", "HEAD~1", second, "Add the sensors and the schedules", "", joe, 1700000900},
		{"HEAD^2 (the merged parent)", "HEAD^2", side, "Side", "", jane, 1700000000},
		{"branch name", "master", merge, "Merge branch 'side'", "", jane, 1700000000},
		{"abbreviated SHA", first.String()[:12], first, "Add assets", "", jane, 1700000000},
		{"upper-case SHA", strings.ToUpper(first.String()), first, "Add assets", "", jane, 1700000000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustRead(t, r.dir, tc.rev)
			if c.SHA != tc.sha.String() || c.Title() != tc.title || c.AuthorName != tc.author.Name || c.AuthorEmail != tc.author.Email ||
				c.Timestamp.Unix() != tc.committed || c.Timestamp.Location() != time.UTC || c.From != FromGit || c.AvatarURL != "" {
				t.Errorf("commit = %+v", c)
			}
			if tc.msg != "" && c.Message != tc.msg {
				t.Errorf("message = %q, want %q", c.Message, tc.msg)
			}
		})
	}
}

// TestReadGitLogFindsTheRepository: from a subdirectory, a linked
// worktree, and a .git file that points elsewhere.
func TestReadGitLogFindsTheRepository(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	r := newTestRepo(t, filepath.Join(base, "main"))
	h := r.commit("Subject", jane, jane)

	t.Run("subdirectory", func(t *testing.T) {
		t.Parallel()
		sub := filepath.Join(r.dir, "a", "b")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if c := mustRead(t, sub, h.String()); c.SHA != h.String() {
			t.Errorf("commit = %+v", c)
		}
	})

	t.Run("linked worktree", func(t *testing.T) {
		t.Parallel()
		// The layout `git worktree add ../wt <sha>` makes: the worktree's
		// .git file names its own git directory, whose commondir is the
		// main repository's.
		wt := filepath.Join(base, "wt")
		wtGit := filepath.Join(r.dir, ".git", "worktrees", "wt")
		writeTestFile(t, filepath.Join(wt, ".git"), "gitdir: "+wtGit+"\n")
		writeTestFile(t, filepath.Join(wtGit, "HEAD"), h.String()+"\n")
		writeTestFile(t, filepath.Join(wtGit, "commondir"), "../..\n")
		writeTestFile(t, filepath.Join(wtGit, "gitdir"), filepath.Join(wt, ".git")+"\n")
		for _, rev := range []string{"HEAD", h.String(), "master"} {
			if c := mustRead(t, wt, rev); c.SHA != h.String() || c.Title() != "Subject" {
				t.Errorf("%s: commit = %+v", rev, c)
			}
		}
	})

	t.Run("gitdir file", func(t *testing.T) {
		t.Parallel()
		// A submodule's or --separate-git-dir checkout: .git is a file,
		// with a path relative to its directory.
		other := filepath.Join(base, "separate")
		sr := newTestRepo(t, other)
		sh := sr.commit("Separate", joe, joe)
		if err := os.Rename(filepath.Join(other, ".git"), filepath.Join(base, "separate.git")); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(other, ".git"), "gitdir: ../separate.git\n")
		if c := mustRead(t, other, "HEAD"); c.SHA != sh.String() || c.Title() != "Separate" {
			t.Errorf("commit = %+v", c)
		}
	})
}

func TestReadGitLogErrors(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, t.TempDir())
	parent := r.commit("Parent", jane, jane)
	head := r.commit("Head", jane, jane)
	// A shallow clone's boundary: the parent's object is not there.
	if err := os.Remove(filepath.Join(r.dir, ".git", "objects", parent.String()[:2], parent.String()[2:])); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(r.dir, ".git", "shallow"), head.String()+"\n")
	if c := mustRead(t, r.dir, head.String()); c.Title() != "Head" {
		t.Errorf("the shallow clone's commit: %+v", c)
	}

	gitFile := filepath.Join(t.TempDir(), "bad")
	writeTestFile(t, filepath.Join(gitFile, ".git"), "not a gitdir line\n")
	dangling := filepath.Join(t.TempDir(), "dangling")
	writeTestFile(t, filepath.Join(dangling, ".git"), "gitdir: ../nowhere\n")
	notDir := filepath.Join(t.TempDir(), "file")
	writeTestFile(t, notDir, "x")

	tests := []struct{ name, dir, sha, want string }{
		{"commit not in the clone", r.dir, headSHA, "commit " + headSHA + " is not in the repository"},
		{"parent cut off by the shallow clone", r.dir, parent.String(), "is not in the repository"},
		{"unknown revision", r.dir, "no-such-branch", `revision "no-such-branch" is not in the repository`},
		{"empty revision", r.dir, "", "no commit given"},
		{"not a repository", t.TempDir(), "HEAD", "is not in a git repository"},
		{"missing directory", filepath.Join(t.TempDir(), "gone"), "HEAD", "no such file or directory"},
		{"a file, not a directory", notDir, "HEAD", "is not a directory"},
		{"bad .git file", gitFile, "HEAD", "is not a gitdir file"},
		{".git file pointing nowhere", dangling, "HEAD", "which is not a git directory"},
	}
	for _, tc := range tests {
		_, err := ReadGitLog(tc.dir, tc.sha)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// TestReadGitLogExtensions: what actions/checkout sets for `filter:`
// (partialclone) and sparse checkouts (worktreeconfig) reads; a SHA-256
// repository or an unknown extension is a clear error.
func TestReadGitLogExtensions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, config string
		revs         map[string]string // revision ("" = the commit's SHA) -> error substring ("" = reads)
	}{
		{"partial clone and sparse checkout", "[extensions]\n\tpartialclone = origin\n\tworktreeConfig = true\n[remote \"origin\"]\n\tpromisor = true\n",
			map[string]string{"": "", "HEAD": ""}},
		{"sha1 object format", "[extensions]\n\tobjectformat = sha1\n", map[string]string{"HEAD": ""}},
		{"SHA-256", "[extensions]\n\tobjectformat = sha256\n", map[string]string{"": "uses SHA-256 object names", "HEAD": "reads only SHA-1 repositories"}},
		{"reftable", "[extensions]\n\trefstorage = reftable\n", map[string]string{"": "", "HEAD": "reftable"}},
		{"unknown extension", "[extensions]\n\tfrobnicate = true\n", map[string]string{"HEAD": `git extension "frobnicate"`}},
		{"unknown format version", "[core]\n\trepositoryformatversion = 2\n", map[string]string{"HEAD": "repositoryformatversion 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRepo(t, t.TempDir())
			h := r.commit("Subject", jane, jane)
			r.setConfig(t, tc.config)
			for rev, want := range tc.revs {
				if rev == "" {
					rev = h.String()
				}
				c, err := ReadGitLog(r.dir, rev)
				switch {
				case want == "" && (err != nil || c.SHA != h.String()):
					t.Errorf("%s: %v, %+v", rev, err, c)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: err = %v, want it to contain %q", rev, err, want)
				}
			}
		})
	}
}

// TestReadGitLogEncoding: git log re-encodes a commit recorded in another
// encoding to UTF-8.
func TestReadGitLogEncoding(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, t.TempDir())
	base := r.commit("Base", jane, jane)
	tree, err := r.repo.CommitObject(base)
	if err != nil {
		t.Fatal(err)
	}
	latin1 := r.store(&object.Commit{
		Author:    object.Signature{Name: "Jos\xe9 Mu\xf1oz", Email: "jose@example.com", When: jane.When},
		Committer: jane, Message: "Caf\xe9 \xe0 la carte\n", TreeHash: tree.TreeHash, Encoding: "ISO-8859-1",
	})
	unknown := r.store(&object.Commit{Author: jane, Committer: jane, Message: "Raw \xff bytes\n", TreeHash: tree.TreeHash, Encoding: "x-no-such-charset"})
	if c := mustRead(t, r.dir, latin1.String()); c.AuthorName != "José Muñoz" || c.Title() != "Café à la carte" {
		t.Errorf("ISO-8859-1 commit = %+v", c)
	}
	if c := mustRead(t, r.dir, unknown.String()); c.Title() != "Raw \xff bytes" {
		t.Errorf("unknown encoding = %+v", c)
	}
}

// TestReadGitLogTakesNoOptions: a value that looks like an option is a
// revision that is not there, and nothing is written.
func TestReadGitLogTakesNoOptions(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, t.TempDir())
	r.commit("Subject", jane, jane)
	out := filepath.Join(t.TempDir(), "written")
	for _, rev := range []string{"--output=" + out, "-p", "--all"} {
		if _, err := ReadGitLog(r.dir, rev); err == nil {
			t.Errorf("%q read as a revision", rev)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a file was written")
	}
}

// TestReadGitLogNeedsNoGitBinary: the action's image has no git.
func TestReadGitLogNeedsNoGitBinary(t *testing.T) {
	r := newTestRepo(t, t.TempDir())
	h := r.commit("Subject", jane, jane)
	t.Setenv("PATH", t.TempDir())
	if _, err := exec.LookPath("git"); err == nil {
		t.Fatal("git is still on PATH")
	}
	if c := mustRead(t, r.dir, "HEAD"); c.SHA != h.String() {
		t.Errorf("commit = %+v", c)
	}
}

// TestReadGitLogMatchesGit compares, where a git binary is installed (the
// developer's machine, CI), with what git log prints and upstream reads:
// %H, %ct (= %cd --date=unix), %an, %ae and %s.
func TestReadGitLogMatchesGit(t *testing.T) {
	t.Parallel()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git binary to compare with")
	}
	r := newTestRepo(t, t.TempDir())
	var hashes []plumbing.Hash
	for _, msg := range []string{
		"Plain subject",
		"Two-line\nsubject\n\nBody",
		"Trailing spaces   \n  and an indented line\t\n\nBody",
		"CRLF subject\r\nsecond\r\n\r\nBody\r\n",
		"\n\nLeading blank lines\n\nBody",
		"  Leading spaces",
		"Subject\n \t \nwhite-space-only separator",
	} {
		hashes = append(hashes, r.commit(msg, joe, jane))
	}
	for _, h := range hashes {
		cmd := exec.Command(gitBin, "-c", "safe.directory=*", "-C", r.dir, "log", "-1", "--format=%H%x00%ct%x00%an%x00%ae%x00%s", h.String(), "--")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		f := strings.SplitN(strings.TrimSuffix(string(out), "\n"), "\x00", 5)
		c := mustRead(t, r.dir, h.String())
		if c.SHA != f[0] || strconv.FormatInt(c.Timestamp.Unix(), 10) != f[1] || c.AuthorName != f[2] || c.AuthorEmail != f[3] ||
			c.Title() != strings.TrimSpace(f[4]) {
			t.Errorf("go-git %+v (title %q)\ngit    %q", c, c.Title(), f)
		}
	}
}
