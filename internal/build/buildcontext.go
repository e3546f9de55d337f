package build

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DefaultDockerfile is the Dockerfile name used when Spec.Dockerfile is empty.
const DefaultDockerfile = "Dockerfile"

// contextHint tells where the directory comes from in the user's configuration.
const contextHint = "the build context is the location's build.directory in dagster_cloud.yaml, relative to that file"

// buildContext is a validated build context, ready to be sent as a tar.
type buildContext struct {
	dir        string   // absolute context directory
	dockerfile string   // path of the Dockerfile inside the context, forward slashes
	excludes   []string // .dockerignore patterns, with the Dockerfile and .dockerignore kept
}

// prepareContext checks the context directory and Dockerfile and reads .dockerignore, as
// docker/cli's `docker build` does (ReadDockerignore, ValidateContextDirectory,
// TrimBuildFilesFromExcludes).
func prepareContext(contextDir, dockerfile string) (*buildContext, error) {
	if contextDir == "" {
		return nil, fmt.Errorf("no build context directory given (%s)", contextHint)
	}
	dir, err := filepath.Abs(contextDir)
	if err != nil {
		return nil, fmt.Errorf("build context directory %s: %w", contextDir, err)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("build context directory %s does not exist (%s)", dir, contextHint)
	case err != nil:
		return nil, fmt.Errorf("build context directory %s: %w", dir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("build context %s is not a directory (%s)", dir, contextHint)
	}
	// Resolve symlinks so that the containment check below compares real paths.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}

	rel, err := dockerfileInContext(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	dfPath := filepath.Join(dir, filepath.FromSlash(rel))
	st, err = os.Stat(dfPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("Dockerfile %s not found in build context %s (%s; the Dockerfile path is relative to that directory)", dfPath, dir, contextHint)
	case err != nil:
		return nil, fmt.Errorf("Dockerfile %s: %w", dfPath, err)
	case st.IsDir():
		return nil, fmt.Errorf("Dockerfile %s is a directory, not a file", dfPath)
	}

	excludes, err := readDockerignore(dir)
	if err != nil {
		return nil, err
	}
	if err := validateContextDirectory(dir, excludes); err != nil {
		return nil, err
	}
	excludes = trimBuildFilesFromExcludes(excludes, rel)
	return &buildContext{dir: dir, dockerfile: rel, excludes: excludes}, nil
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

func readDockerignore(dir string) ([]string, error) {
	p := filepath.Join(dir, ".dockerignore")
	f, err := os.Open(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return patterns, nil
}

// trimBuildFilesFromExcludes keeps the Dockerfile and .dockerignore in the context even when
// .dockerignore excludes them: the daemon needs the Dockerfile, and removes both from what COPY
// sees itself.
func trimBuildFilesFromExcludes(excludes []string, dockerfile string) []string {
	if len(excludes) == 0 {
		return excludes
	}
	if m, _ := patternmatcher.MatchesOrParentMatches(".dockerignore", excludes); m {
		excludes = append(excludes, "!.dockerignore")
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
func (c *buildContext) tar() (io.ReadCloser, error) {
	rc, err := archive.TarWithOptions(c.dir, &archive.TarOptions{
		ExcludePatterns: c.excludes,
		ChownOpts:       &archive.ChownOpts{UID: 0, GID: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("archiving build context %s: %w", c.dir, err)
	}
	return rc, nil
}
