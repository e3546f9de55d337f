package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// BuildPaths are a location's build context and Dockerfile, resolved
// (symlinks, "..", absolute paths) and checked to lie inside the project.
type BuildPaths struct {
	ContextDir string // real path of the build context
	Dockerfile string // the Dockerfile as given (relative to ContextDir, or absolute)
}

// BuildPaths resolves the location's build.directory against root (the
// project directory) and its Dockerfile (build.dockerfile, else
// defaultDockerfile) against that, and refuses either when it resolves
// outside root: a build context is sent whole to the builder and ends up
// in an image that is pushed, so a directory that points at the runner's
// home would publish its SSH keys and Docker credentials. The error points
// at the line (of dagster_cloud.yaml or dagster_branch_deploy.yaml) that
// set the path. Symlinks inside the context are not followed here or by
// the build; they are sent as links.
func (f *File) BuildPaths(l Location, root, defaultDockerfile string) (BuildPaths, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return BuildPaths{}, fmt.Errorf("project directory %s: %w", root, err)
	}
	dirLine := orLine(l.Build.DirectoryLine, l.Line)
	dir, err := resolveWithin(realRoot, root, l.Build.Directory)
	if err != nil {
		return BuildPaths{}, &Error{File: f.Path, Line: dirLine, Msg: fmt.Sprintf("location %q: build.directory %q %s; a build context must be inside the project directory", l.Name, l.Build.Directory, err)}
	}
	dockerfile, what := l.Build.Dockerfile, "build.dockerfile"
	if dockerfile == "" {
		dockerfile, what = defaultDockerfile, "the Dockerfile (the action's dockerfile input)"
	}
	if _, err := resolveWithin(realRoot, dir, dockerfile); err != nil {
		file, line := f.Path, orLine(l.Build.DockerfileLine, dirLine)
		if l.Build.DockerfileFile != "" && l.Build.DockerfileLine > 0 {
			file = l.Build.DockerfileFile // set in dagster_branch_deploy.yaml
		}
		return BuildPaths{}, &Error{File: file, Line: line, Msg: fmt.Sprintf("location %q: %s %q %s; a Dockerfile must be inside the project directory", l.Name, what, dockerfile, err)}
	}
	return BuildPaths{ContextDir: dir, Dockerfile: dockerfile}, nil
}

// Within checks that path resolves (symlinks followed) to root or a place
// under it; the error says where it resolves to.
func Within(root, path string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("cannot be checked: %w", err)
	}
	_, err = resolveWithin(realRoot, realRoot, path)
	return err
}

func orLine(line, def int) int {
	if line > 0 {
		return line
	}
	return def
}

// errOutside explains a path that resolves outside the project.
type errOutside struct{ real, root string }

func (e *errOutside) Error() string {
	return fmt.Sprintf("resolves to %s, outside %s (check for \"..\", an absolute path, or a symlink that points out of the repository)", e.real, e.root)
}

// resolveWithin resolves p (relative to base, or absolute) with every
// symlink followed, and returns the real path when it lies inside
// realRoot. A path that does not exist (yet) is resolved as far as it
// exists; the rest cannot hold symlinks and is joined lexically, so the
// builder can report it missing.
func resolveWithin(realRoot, base, p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	real, err := evalExisting(filepath.Clean(p), 0)
	if err != nil {
		return "", fmt.Errorf("cannot be resolved: %w", err)
	}
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", &errOutside{real: real, root: realRoot}
	}
	return real, nil
}

// evalExisting is filepath.EvalSymlinks for a path whose tail may not exist.
func evalExisting(p string, depth int) (string, error) {
	if depth > 255 {
		return "", fmt.Errorf("%s: too many levels of symbolic links", p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	// A dangling symlink: where it points is what matters.
	if target, lerr := os.Readlink(p); lerr == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		return evalExisting(filepath.Clean(target), depth+1)
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	realParent, err := evalExisting(parent, depth+1)
	if err != nil {
		return "", err
	}
	return filepath.Join(realParent, filepath.Base(p)), nil
}
