package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Busybox, as the content of a file given to NewProject or WriteFiles,
// stands for Debian's static /bin/busybox (mode 0755): a shell for RUN
// steps of images FROM scratch, since the test daemons reach no registry
// but the scenario's.
const Busybox = "{{BUSYBOX}}"

// NewProject is New with a workspace that holds files instead of a project
// of testdata/projects: paths are relative to the workspace (slash
// separated), and "{{REGISTRY}}" in a file is replaced by the registry's
// address. The head commit (HeadSHA) holds exactly these files.
func NewProject(ctx context.Context, dir string, files map[string]string) (*Scenario, error) {
	return NewProjectWith(ctx, dir, files, Options{})
}

// NewProjectWith is NewProject with the stand-ins set up as opts says (see
// NewWith).
func NewProjectWith(ctx context.Context, dir string, files map[string]string, opts Options) (*Scenario, error) {
	s, err := NewWith(ctx, dir, "quickstart", opts)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.Workspace)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.Workspace, e.Name())); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.WriteFiles(files); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.CommitAll("Add the code locations"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// WriteFiles writes files into the workspace, as NewProject does, creating
// directories; nothing is committed (see CommitAll).
func (s *Scenario) WriteFiles(files map[string]string) error {
	var busybox []byte
	for rel, content := range files {
		if filepath.IsAbs(rel) || strings.HasPrefix(filepath.Clean(filepath.FromSlash(rel)), "..") {
			return fmt.Errorf("scenario: %s is not a path inside the workspace", rel)
		}
		path := filepath.Join(s.Workspace, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if content == Busybox {
			if busybox == nil {
				b, err := os.ReadFile("/bin/busybox")
				if err != nil {
					return fmt.Errorf("scenario: %s needs a static /bin/busybox (scripts/setup.sh installs busybox-static): %w", rel, err)
				}
				busybox = b
			}
			if err := os.WriteFile(path, busybox, 0o755); err != nil {
				return err
			}
			continue
		}
		content = strings.ReplaceAll(content, "{{REGISTRY}}", s.Registry.Addr)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CommitAll commits every change of the workspace (git add -A) as a new
// head commit and makes it known to the emulator, as a push to the pull
// request would.
func (s *Scenario) CommitAll(msg string) error {
	if s.GitLab != nil {
		if _, err := git(s.Workspace, "checkout", "-q", GitLabSourceBranch); err != nil {
			return err
		}
	}
	if _, err := git(s.Workspace, "add", "-A"); err != nil {
		return err
	}
	if _, err := git(s.Workspace, "commit", "-q", "--allow-empty", "-m", msg); err != nil {
		return err
	}
	sha, err := git(s.Workspace, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	s.HeadSHA = sha
	s.publish(msg)
	return nil
}
