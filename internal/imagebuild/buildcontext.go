package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DefaultDockerfile is the Dockerfile name used when Spec.Dockerfile is empty.
const DefaultDockerfile = "Dockerfile"

// contextHint tells where the directory comes from in the user's configuration.
const contextHint = "the build context is the location's build.directory in dagster_cloud.yaml, relative to that file"

// buildContext is a validated build context, ready to be sent.
type buildContext struct {
	dir        string   // absolute context directory
	dockerfile string   // path of the Dockerfile inside the context (the tar), forward slashes
	excludes   []string // .dockerignore patterns, with the Dockerfile and .dockerignore kept

	// generated is the content of a generated Dockerfile (Spec.DockerfileContent), nil for a
	// Dockerfile of the context. The context tar then carries it as the file dockerfile, a
	// name of the generatedDockerfilePrefix that no file of the directory has, and a
	// .dockerignore that lists it (see tar); a BuildKit build gets it through the session
	// instead (see fileSync).
	generated []byte
	// dockerignore is the content of the directory's .dockerignore (nil if there is none),
	// kept for the .dockerignore of a tar with a generated Dockerfile.
	dockerignore []byte
}

// generatedDockerfilePrefix starts the name under which a generated Dockerfile travels in the
// context tar of the classic builder; random hex follows.
const generatedDockerfilePrefix = ".dagster-branch-deploy.Dockerfile."

// prepareSpecContext prepares the context of s, with its Dockerfile or its generated one.
func prepareSpecContext(s Spec) (*buildContext, error) {
	if s.DockerfileContent == nil {
		return prepareContext(s.ContextDir, s.Dockerfile)
	}
	if s.Dockerfile != "" {
		return nil, fmt.Errorf("build: both a Dockerfile path (%s) and the content of a generated Dockerfile given; give one", s.Dockerfile)
	}
	if len(bytes.TrimSpace(s.DockerfileContent)) == 0 {
		return nil, errors.New("build: the generated Dockerfile is empty")
	}
	return prepareGeneratedContext(s.ContextDir, s.DockerfileContent, randomDockerfileName)
}

// prepareContext checks the context directory and Dockerfile and reads .dockerignore, as
// docker/cli's `docker build` does (ReadDockerignore, ValidateContextDirectory,
// TrimBuildFilesFromExcludes).
func prepareContext(contextDir, dockerfile string) (*buildContext, error) {
	dir, err := contextDirectory(contextDir)
	if err != nil {
		return nil, err
	}
	rel, err := dockerfileInContext(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	dfPath := filepath.Join(dir, filepath.FromSlash(rel))
	st, err := os.Stat(dfPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("Dockerfile %s not found in build context %s (%s; the Dockerfile path is relative to that directory)", dfPath, dir, contextHint)
	case err != nil:
		return nil, fmt.Errorf("Dockerfile %s: %w", dfPath, err)
	case st.IsDir():
		return nil, fmt.Errorf("Dockerfile %s is a directory, not a file", dfPath)
	}

	excludes, _, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	if err := validateContextDirectory(dir, excludes); err != nil {
		return nil, err
	}
	excludes = trimBuildFilesFromExcludes(excludes, rel)
	return &buildContext{dir: dir, dockerfile: rel, excludes: excludes}, nil
}

// prepareGeneratedContext checks the context directory and reads .dockerignore for a build
// with the generated Dockerfile content, as `docker build -f - DIR` does. The Dockerfile's name
// in the context tar comes from newName, retried while the directory has a file of that name.
func prepareGeneratedContext(contextDir string, content []byte, newName func() string) (*buildContext, error) {
	dir, err := contextDirectory(contextDir)
	if err != nil {
		return nil, err
	}
	excludes, ignore, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	if err := validateContextDirectory(dir, excludes); err != nil {
		return nil, err
	}
	name := ""
	for range 10 {
		n := newName()
		if _, err := os.Lstat(filepath.Join(dir, n)); errors.Is(err, fs.ErrNotExist) {
			name = n
			break
		}
	}
	if name == "" {
		return nil, fmt.Errorf("build context %s: found no free name for the generated Dockerfile", dir)
	}
	return &buildContext{
		dir:          dir,
		dockerfile:   name,
		excludes:     trimBuildFilesFromExcludes(excludes, ""),
		generated:    content,
		dockerignore: ignore,
	}, nil
}

// randomDockerfileName returns a name for a generated Dockerfile in the context tar.
func randomDockerfileName() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return generatedDockerfilePrefix + hex.EncodeToString(b)
}

// contextDirectory checks the context directory and returns its absolute, symlink-free path.
func contextDirectory(contextDir string) (string, error) {
	if contextDir == "" {
		return "", fmt.Errorf("no build context directory given (%s)", contextHint)
	}
	dir, err := filepath.Abs(contextDir)
	if err != nil {
		return "", fmt.Errorf("build context directory %s: %w", contextDir, err)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("build context directory %s does not exist (%s)", dir, contextHint)
	case err != nil:
		return "", fmt.Errorf("build context directory %s: %w", dir, err)
	case !st.IsDir():
		return "", fmt.Errorf("build context %s is not a directory (%s)", dir, contextHint)
	}
	// Resolve symlinks so that the containment check of the Dockerfile compares real paths.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return dir, nil
}

// dockerfileInContext returns the Dockerfile's path relative to dir, with forward slashes, or
// an error if it lies outside dir. dockerfile may be relative to dir (the usual case) or
// absolute.
func dockerfileInContext(dir, dockerfile string) (string, error) {
	if dockerfile == "" {
		dockerfile = DefaultDockerfile
	}
	abs := dockerfile
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(dir, abs)
	}
	abs = filepath.Clean(abs)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("Dockerfile %s is outside the build context %s: it must be inside the context directory (%s)", dockerfile, dir, contextHint)
	}
	return filepath.ToSlash(rel), nil
}

// readDockerignore returns the patterns of dir's .dockerignore and its content; both are nil
// when there is none.
func readDockerignore(dir string) ([]string, []byte, error) {
	p := filepath.Join(dir, ".dockerignore")
	content, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading %s: %w", p, err)
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(content))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return patterns, content, nil
}

// trimBuildFilesFromExcludes keeps the Dockerfile and .dockerignore in the context even when
// .dockerignore excludes them: the daemon needs the Dockerfile, and removes both from what COPY
// sees itself. An empty dockerfile (a generated Dockerfile, not a file of the context) keeps
// only .dockerignore.
func trimBuildFilesFromExcludes(excludes []string, dockerfile string) []string {
	if len(excludes) == 0 {
		return excludes
	}
	if m, _ := patternmatcher.MatchesOrParentMatches(".dockerignore", excludes); m {
		excludes = append(excludes, "!.dockerignore")
	}
	if dockerfile == "" {
		return excludes
	}
	if m, _ := patternmatcher.MatchesOrParentMatches(dockerfile, excludes); m {
		excludes = append(excludes, "!"+dockerfile)
	}
	return excludes
}

// validateContextDirectory walks the files that will be sent and fails early, with the path, on
// a file that cannot be read; otherwise the failure would surface as a broken tar stream.
func validateContextDirectory(dir string, excludes []string) error {
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return fmt.Errorf("invalid pattern in %s: %w", filepath.Join(dir, ".dockerignore"), err)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading build context: %w", err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel != "." {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		// Skip symlinks (dangling ones are fine) and named pipes (opening them would hang).
		if d.Type()&(fs.ModeSymlink|fs.ModeNamedPipe) != 0 || d.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("build context file %s cannot be read: %w", p, err)
		}
		_ = f.Close()
		return nil
	})
}

// tar streams the context as an uncompressed tar with every file owned by 0:0.
//
// With a generated Dockerfile, the stream also carries it as c.dockerfile, and the
// .dockerignore of the stream (the directory's, or one made up that lists itself) ends with
// that name, as docker/cli's AddDockerfileToBuildContext does for `docker build -f -`: the
// classic builder reads the Dockerfile, then removes from the context the Dockerfile and
// .dockerignore if .dockerignore lists them, so COPY sees neither. The line comes last, so no
// pattern of the user's can bring the file back. Nothing is written to the directory.
func (c *buildContext) tar() (io.ReadCloser, error) {
	rc, err := archive.TarWithOptions(c.dir, c.tarOptions())
	if err != nil {
		return nil, fmt.Errorf("archiving build context %s: %w", c.dir, err)
	}
	if c.generated == nil {
		return rc, nil
	}
	now := time.Now()
	return archive.ReplaceFileTarWrapper(rc, map[string]archive.TarModifierFunc{
		c.dockerfile: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			// Not a file of the directory (prepareGeneratedContext checked), so never a
			// replacement: the header is always nil here.
			return &tar.Header{Name: c.dockerfile, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: now}, c.generated, nil
		},
		".dockerignore": func(_ string, h *tar.Header, _ io.Reader) (*tar.Header, []byte, error) {
			var b bytes.Buffer
			if c.dockerignore != nil {
				b.Write(c.dockerignore)
			} else {
				b.WriteString(".dockerignore") // made up here: the daemon removes it too
			}
			b.WriteString("\n" + c.dockerfile + "\n")
			if h == nil || h.Typeflag != tar.TypeReg { // absent, or a symlink to the patterns
				h = &tar.Header{Name: ".dockerignore", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: now}
			}
			return h, b.Bytes(), nil
		},
	}), nil
}

// tarOptions select and shape the files of the context tar: those .dockerignore does not
// exclude, owned by 0:0. The inputs digest (InputsDigest) reads the same selection.
func (c *buildContext) tarOptions() *archive.TarOptions {
	return &archive.TarOptions{
		ExcludePatterns: c.excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	}
}

// describeDockerfile names the Dockerfile for the log.
func (c *buildContext) describeDockerfile() string {
	if c.generated != nil {
		return fmt.Sprintf("a generated Dockerfile of %d bytes", len(c.generated))
	}
	return "Dockerfile " + c.dockerfile
}
