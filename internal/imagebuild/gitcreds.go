package imagebuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	format "github.com/go-git/go-git/v5/plumbing/format/config"
	"github.com/moby/patternmatcher"
)

// GitCredential finds a credential in the git configuration a build
// context would send: dir/.git/config, unless dir's .dockerignore excludes
// it (as the build applies .dockerignore). A credential is an
// http.extraheader (or http.<url>.extraheader) that is an Authorization
// header, which actions/checkout writes with persist-credentials: true,
// or a URL with a password in it (a remote's url, an insteadOf). It
// returns the configuration key that holds one ("" when there is none),
// never its value. A .git that is a file (a worktree, a submodule) keeps
// its configuration elsewhere, outside the context.
func GitCredential(dir string) (string, error) {
	path := filepath.Join(dir, ".git", "config")
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return "", nil
	case err != nil:
		return "", err
	}
	key := credentialKey(raw)
	if key == "" {
		return "", nil
	}
	excludes, _, err := readDockerignore(dir)
	if err != nil {
		return "", err
	}
	if len(excludes) > 0 {
		pm, err := patternmatcher.New(excludes)
		if err != nil {
			return "", fmt.Errorf("invalid pattern in %s: %w", filepath.Join(dir, ".dockerignore"), err)
		}
		if excluded, err := pm.MatchesOrParentMatches(".git/config"); err == nil && excluded {
			return "", nil
		}
	}
	return key, nil
}

// credentialKey is the key of the first credential in a git
// configuration, "" when it has none (or cannot be parsed).
func credentialKey(raw []byte) string {
	cfg := format.New()
	if err := format.NewDecoder(bytes.NewReader(raw)).Decode(cfg); err != nil {
		// An unparsable file may still hold the header git wrote.
		if bytes.Contains(bytes.ToLower(raw), []byte("extraheader")) && bytes.Contains(bytes.ToLower(raw), []byte("authorization:")) {
			return "http.extraheader"
		}
		return ""
	}
	for _, s := range cfg.Sections {
		check := func(sub string, opts format.Options) string {
			name := s.Name
			if sub != "" {
				name += "." + withoutUserinfo(sub)
			}
			if hasPassword(sub) {
				return name // [url "https://user:token@host/"] insteadOf = …
			}
			for _, o := range opts {
				k := strings.ToLower(o.Key)
				switch {
				case strings.EqualFold(s.Name, "http") && k == "extraheader" &&
					strings.HasPrefix(strings.ToLower(strings.TrimSpace(o.Value)), "authorization:"):
					return name + "." + o.Key
				case (k == "url" || k == "pushurl" || k == "insteadof" || k == "pushinsteadof") && hasPassword(o.Value):
					return name + "." + o.Key
				}
			}
			return ""
		}
		if k := check("", s.Options); k != "" {
			return k
		}
		for _, sub := range s.Subsections {
			if k := check(sub.Name, sub.Options); k != "" {
				return k
			}
		}
	}
	return ""
}

// hasPassword says a URL carries a password (https://user:token@host/…).
func hasPassword(v string) bool {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// withoutUserinfo is a configuration subsection (often a URL) without the
// user and password it may carry, fit to be shown.
func withoutUserinfo(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	u.User = nil
	return u.String()
}
