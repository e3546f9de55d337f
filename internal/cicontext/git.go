package cicontext

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ReadGitLog runs `git log -1` for sha (or a ref such as HEAD) in dir; sha
// can never be taken for an option (--end-of-options). It passes safe.directory
// because inside a Docker action the checkout is owned by the runner's user,
// not by root.
func ReadGitLog(dir, sha string) (Commit, error) {
	cmd := exec.Command("git", "-c", "safe.directory=*", "-C", dir,
		"log", "-1", "--format=%H%x00%ct%x00%an%x00%ae%x00%B", "--end-of-options", sha, "--")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Commit{}, fmt.Errorf("git log %s in %s: %w: %s", sha, dir, err, strings.TrimSpace(stderr.String()))
	}
	parts := strings.SplitN(string(out), "\x00", 5)
	if len(parts) != 5 {
		return Commit{}, fmt.Errorf("git log %s in %s: unexpected output %q", sha, dir, out)
	}
	secs, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Commit{}, fmt.Errorf("git log %s in %s: bad commit time %q", sha, dir, parts[1])
	}
	return Commit{
		SHA:         parts[0],
		Timestamp:   time.Unix(secs, 0).UTC(),
		AuthorName:  parts[2],
		AuthorEmail: parts[3],
		Message:     strings.TrimSpace(parts[4]),
	}, nil
}
