package cicontext

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"
	"golang.org/x/text/encoding/ianaindex"
)

// ReadGitLog reads, from the git repository that holds dir (dir or one of
// its parents has the .git directory or `gitdir:` file), what
// `git log -1 --format=%H%x00%ct%x00%an%x00%ae%x00%B <sha>` shows: the
// commit's full SHA, its committer time (%ct, upstream's
// `%cd --date=unix`), its author's name and email (%an, %ae: as recorded,
// without .mailmap) and its whole message; Title gives what %s shows.
//
// sha is a full commit SHA or a revision such as "HEAD" or a branch name.
// It reads the repository with go-git: the action's image has no git
// binary, and nothing here runs a program, so no value of sha can be taken
// for an option. Linked worktrees (commondir), `.git` files (submodules,
// --separate-git-dir), packed objects and refs, shallow and partial clones
// work. It returns an error, and the caller falls back to other sources,
// when dir is in no repository, the commit is not in it (a shallow clone of
// another ref), or the repository is one it cannot read: SHA-256 object
// names (go-git reads them only when built for SHA-256 alone) or a git
// extension it does not know.
func ReadGitLog(dir, sha string) (Commit, error) {
	c, err := readGitLog(dir, sha)
	if err != nil {
		return Commit{}, fmt.Errorf("reading commit %q from the git repository at %s: %w", sha, dir, err)
	}
	return c, nil
}

func readGitLog(dir, sha string) (Commit, error) {
	if strings.TrimSpace(sha) == "" {
		return Commit{}, errors.New("no commit given")
	}
	repo, err := openRepository(dir)
	if err != nil {
		return Commit{}, err
	}
	h, err := repo.resolve(sha)
	if err != nil {
		return Commit{}, err
	}
	gc, err := object.GetCommit(repo.storage, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return Commit{}, fmt.Errorf("commit %s is not in the repository %s (a shallow clone or a checkout of another ref?)", h, repo.gitDir)
	}
	if err != nil {
		return Commit{}, fmt.Errorf("reading commit %s: %w", h, err)
	}
	msg, name, email := gc.Message, gc.Author.Name, gc.Author.Email
	if enc := string(gc.Encoding); enc != "" && !isUTF8(enc) {
		// git log re-encodes a commit recorded in another encoding to UTF-8
		// (i18n.logOutputEncoding); an encoding it does not know leaves
		// the bytes as they are, as git does.
		if e, err := ianaindex.IANA.Encoding(enc); err == nil && e != nil {
			dec := e.NewDecoder()
			msg = decodeOr(dec.String, msg)
			name = decodeOr(dec.String, name)
			email = decodeOr(dec.String, email)
		}
	}
	return Commit{
		SHA:         gc.Hash.String(),
		Timestamp:   time.Unix(gc.Committer.When.Unix(), 0).UTC(),
		AuthorName:  name,
		AuthorEmail: email,
		Message:     strings.TrimSpace(msg),
		From:        FromGit,
	}, nil
}

func isUTF8(enc string) bool {
	return strings.EqualFold(enc, "UTF-8") || strings.EqualFold(enc, "UTF8")
}

func decodeOr(decode func(string) (string, error), s string) string {
	if d, err := decode(s); err == nil {
		return d
	}
	return s
}

// repository is an opened repository: its storage and what its config
// says about reading it.
type repository struct {
	gitDir  string
	storage *filesystem.Storage
	config  *config.Config
	// refsReadable is false for a reftable repository, whose refs go-git
	// cannot read; full SHAs are still found.
	refsReadable bool
}

var fullSHA1 = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// resolve turns sha into a commit hash: a full SHA as is, anything else as
// a revision (HEAD, a branch or tag, an abbreviated SHA, rev~n, ...).
func (r *repository) resolve(sha string) (plumbing.Hash, error) {
	if fullSHA1.MatchString(sha) {
		return plumbing.NewHash(sha), nil
	}
	if !r.refsReadable {
		return plumbing.ZeroHash, fmt.Errorf("revision %q: the repository %s keeps its refs in a reftable, which this reader cannot read; pass a full commit SHA", sha, r.gitDir)
	}
	// git.Open checks the config's extensions against the few go-git knows
	// and refuses partialclone and worktreeconfig, which actions/checkout
	// sets for `filter:` and sparse checkouts; they change nothing about
	// reading a commit, and openRepository has vetted them.
	repo, err := git.Open(vettedStorage{r.storage, r.config}, nil)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("opening %s: %w", r.gitDir, err)
	}
	h, err := repo.ResolveRevision(plumbing.Revision(sha))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("revision %q is not in the repository %s: %w", sha, r.gitDir, err)
	}
	return *h, nil
}

// vettedStorage is the repository's storage with a config whose
// extensions openRepository has checked and removed.
type vettedStorage struct {
	*filesystem.Storage
	config *config.Config
}

func (v vettedStorage) Config() (*config.Config, error) { return v.config, nil }

// openRepository finds the repository that holds dir the way git does:
// the first of dir and its parents that has a .git directory, or a .git
// file naming the git directory (`gitdir: <path>`, relative to the file's
// directory). A git directory with a commondir file (a linked worktree)
// shares the objects, refs and config of the common directory.
func openRepository(dir string) (*repository, error) {
	gitDir, err := findGitDir(dir)
	if err != nil {
		return nil, err
	}
	var fs billy.Filesystem = osfs.New(gitDir)
	common, err := commonDir(gitDir)
	if err != nil {
		return nil, err
	}
	if common != "" {
		fs = dotgit.NewRepositoryFilesystem(fs, osfs.New(common))
	}
	st := filesystem.NewStorage(fs, cache.NewObjectLRUDefault())
	cfg, err := st.Config()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", gitDir, err)
	}
	repo := &repository{gitDir: gitDir, storage: st, refsReadable: true}
	if err := repo.vet(cfg); err != nil {
		return nil, err
	}
	repo.config = cfg
	return repo, nil
}

// vet checks the repository format and extensions (gitrepository-layout,
// git-config `extensions.*`): it refuses what would make a commit read
// wrongly, and removes the rest from cfg.
func (r *repository) vet(cfg *config.Config) error {
	if cfg.Raw == nil {
		return nil
	}
	switch v := strings.TrimSpace(cfg.Raw.Section("core").Options.Get("repositoryformatversion")); v {
	case "", "0", "1":
	default:
		return fmt.Errorf("the repository %s has core.repositoryformatversion %s, which this reader does not know", r.gitDir, v)
	}
	if !cfg.Raw.HasSection("extensions") {
		return nil
	}
	for _, o := range cfg.Raw.Section("extensions").Options {
		value := strings.ToLower(strings.TrimSpace(o.Value))
		switch strings.ToLower(o.Key) {
		case "objectformat":
			if value != "" && value != "sha1" {
				name := value
				if value == "sha256" {
					name = "SHA-256"
				}
				return fmt.Errorf("the repository %s uses %s object names (extensions.objectformat); this build reads only SHA-1 repositories (go-git reads SHA-256 ones only when built for SHA-256 alone)", r.gitDir, name)
			}
		case "refstorage":
			r.refsReadable = value == "" || value == "files"
		case "noop", "noop-v1", "partialclone", "preciousobjects", "worktreeconfig", "compatobjectformat":
			// Nothing that changes how a commit is found or read.
		default:
			return fmt.Errorf("the repository %s uses the git extension %q (extensions.%s), which this reader does not know", r.gitDir, o.Key, o.Key)
		}
	}
	cfg.Raw.RemoveSection("extensions")
	cfg.Extensions.ObjectFormat = ""
	return nil
}

// findGitDir returns the git directory of the repository that holds dir.
func findGitDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil {
		return "", err
	} else if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", abs)
	}
	for d := abs; ; {
		dotGit := filepath.Join(d, ".git")
		fi, err := os.Stat(dotGit)
		switch {
		case err == nil && fi.IsDir():
			return dotGit, nil
		case err == nil:
			return readGitFile(dotGit)
		case !errors.Is(err, os.ErrNotExist):
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not in a git repository (no .git in it or any parent)", abs)
		}
		d = parent
	}
}

// readGitFile reads a .git file: `gitdir: <path>`.
func readGitFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	gitDir, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "gitdir: ")
	if !ok || strings.TrimSpace(gitDir) == "" {
		return "", fmt.Errorf("%s is not a gitdir file (`gitdir: <path>`)", path)
	}
	gitDir = strings.TrimSpace(gitDir)
	if !filepath.IsAbs(gitDir) {
		gitDir = filepath.Join(filepath.Dir(path), gitDir)
	}
	if fi, err := os.Stat(gitDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s points to %s, which is not a git directory", path, gitDir)
	}
	return gitDir, nil
}

// commonDir returns the directory a linked worktree's git directory shares
// (its commondir file, relative to the git directory), or "".
func commonDir(gitDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(gitDir, "commondir"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	common := strings.TrimSpace(string(b))
	if common == "" {
		return "", nil
	}
	if !filepath.IsAbs(common) {
		common = filepath.Join(gitDir, common)
	}
	if fi, err := os.Stat(common); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("the worktree's git directory %s shares %s, which is missing", gitDir, common)
	}
	return common, nil
}
