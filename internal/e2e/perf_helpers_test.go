//go:build docker

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// Helpers of the tests that write their own project (parallel builds,
// reuse, per-branch cache, remote BuildKit, the event policy): each runs the
// built binary through scenario.Run on a workspace of files
// (scenario.NewProject) and reads its log groups, outputs and comment.

// newProject starts the stand-ins with a workspace of files (see
// scenario.NewProject). It does not check for a Docker daemon: a test that
// builds with it calls testbed.Docker first.
func newProject(t *testing.T, timeout time.Duration, files map[string]string) (*scenario.Scenario, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	s, err := scenario.NewProject(ctx, t.TempDir(), files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ctx
}

// locationsYAML is a dagster_cloud.yaml with one location per name, each
// built from ./<name> and pushed to its own repository acme/<name> of the
// scenario's registry.
func locationsYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("locations:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - location_name: %s\n    code_source:\n      module_name: %s.definitions\n    build:\n      directory: ./%s\n      registry: \"{{REGISTRY}}/acme/%s\"\n", n, n, n, n)
	}
	return b.String()
}

func nonce(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// logGroup is one "::group::Build <locations> → <ref>" of a run's log.
type logGroup struct {
	title string // after "Build "
	body  string
}

var groupRE = regexp.MustCompile(`^::group::Build (.*)$`)

// buildGroups returns the build log groups of stdout in the order they
// were printed, and fails the test if a group starts inside another (the
// logs of concurrent builds must never interleave) or never ends.
func buildGroups(t *testing.T, stdout string) []logGroup {
	t.Helper()
	var out []logGroup
	var cur *logGroup
	var body []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "::group::") {
			if cur != nil {
				t.Fatalf("log group %q starts inside group %q", line, cur.title)
			}
			if m := groupRE.FindStringSubmatch(line); m != nil {
				cur, body = &logGroup{title: m[1]}, nil
			}
			continue
		}
		if line == "::endgroup::" {
			if cur != nil {
				cur.body = strings.Join(body, "\n")
				out = append(out, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			body = append(body, line)
		}
	}
	if cur != nil {
		t.Fatalf("log group %q never ends", cur.title)
	}
	return out
}

// groupOf returns the build group of location loc (alone in its build).
func groupOf(t *testing.T, groups []logGroup, loc string) logGroup {
	t.Helper()
	for _, g := range groups {
		if strings.HasPrefix(g.title, loc+" → ") {
			return g
		}
	}
	t.Fatalf("no build log group of %s among %d groups", loc, len(groups))
	return logGroup{}
}

// stepLineRE matches a BuildKit step line ("#3 [2/2] COPY …", "#3 DONE 0.1s",
// "#3 CACHED"): what a build prints, and a reused image never does.
var stepLineRE = regexp.MustCompile(`(?m)^#\d+ `)

// images decodes the images output: location → reference@digest.
func images(t *testing.T, res *scenario.Result) map[string]string {
	t.Helper()
	var out map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["images"]), &out); err != nil {
		t.Fatalf("images output %q: %v", res.Outputs["images"], err)
	}
	return out
}

// splitRef splits registry/repo:tag@digest into repo (without the
// registry), tag and digest.
func splitRef(t *testing.T, s *scenario.Scenario, ref string) (repo, tag, digest string) {
	t.Helper()
	named, digest, _ := strings.Cut(ref, "@")
	i := strings.LastIndex(named, ":")
	if i < 0 || !strings.HasPrefix(named, s.Registry.Addr+"/") {
		t.Fatalf("image %q is not a tagged reference in %s", ref, s.Registry.Addr)
	}
	return strings.TrimPrefix(named[:i], s.Registry.Addr+"/"), named[i+1:], digest
}

// commentRow returns the line of the PR comment's table for loc.
func commentRow(t *testing.T, s *scenario.Scenario, loc string) string {
	t.Helper()
	comments := ourComments(s)
	if len(comments) != 1 {
		t.Fatalf("want one PR comment, got %d", len(comments))
	}
	for _, line := range strings.Split(comments[0].Body, "\n") {
		if strings.HasPrefix(line, "| `"+loc+"` |") {
			return line
		}
	}
	t.Fatalf("the PR comment has no row of %s:\n%s", loc, comments[0].Body)
	return ""
}

// stepOf finds the "#N" of the BuildKit step whose header line contains
// marker.
func stepOf(t *testing.T, log, marker string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^(#\d+) .*` + regexp.QuoteMeta(marker)).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no step with %q in the log:\n%s", marker, log)
	}
	return m[1]
}

// manifestOf fetches the manifest (or index) of repo:ref from the
// scenario's registry, with its media type.
func manifestOf(t *testing.T, ctx context.Context, s *scenario.Scenario, repo, ref string) (map[string]any, string) {
	t.Helper()
	body, mediaType, err := s.Registry.Manifest(ctx, repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest %s:%s: %v", repo, ref, err)
	}
	return m, mediaType
}

// noDeployment fails the test if any deployment of the emulator got a
// code location.
func noDeployment(t *testing.T, s *scenario.Scenario) {
	t.Helper()
	for _, d := range s.Dagster.Deployments() {
		if len(d.Locations) > 0 {
			t.Errorf("something was deployed to %s: %+v", d.Name, d.Locations)
		}
	}
}
