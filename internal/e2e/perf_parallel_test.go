//go:build docker

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// TestPerfParallelBuildsOneFails builds four locations at once
// (max_parallel 4), one of whose Dockerfile fails at once while the others
// still run a RUN step: the others finish, are pushed and shown as pushed
// in the comment; the failure is the run's one error; nothing is deployed;
// each build's log is one whole group, never interleaved with another's.
func TestPerfParallelBuildsOneFails(t *testing.T) {
	testbed.Docker(t)
	good := []string{"ingest", "models", "reports"}
	files := map[string]string{"dagster_cloud.yaml": locationsYAML(append(good, "broken")...)}
	n := nonce(t) // no cache of an earlier run skips the sleep
	for _, loc := range good {
		files[loc+"/busybox"] = scenario.Busybox
		files[loc+"/definitions.py"] = "# " + loc + "\n"
		// The sleep keeps these builds running well after the broken one failed.
		files[loc+"/Dockerfile"] = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 5 && echo " + n + "-" + loc + " > /nonce\"]\nCOPY definitions.py /opt/dagster/app/" + loc + ".py\n"
	}
	files["broken/definitions.py"] = "# broken\n"
	files["broken/Dockerfile"] = "FROM scratch\nCOPY missing.txt /\n"
	s, ctx := newProject(t, 5*time.Minute, files)

	res := runAction(t, ctx, s, "pull_request", "pull_request.opened.json", nil, map[string]string{"max_parallel": "4"})
	if res.ExitCode == 0 {
		t.Fatal("the run succeeded with a failing Dockerfile")
	}
	errs := errorAnnotations(res.Stdout)
	if len(errs) != 1 {
		t.Fatalf("want one ::error annotation, got %d: %q", len(errs), errs)
	}
	for _, want := range []string{"code location(s) broken,", "nothing was deployed", "missing.txt"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("the error annotation lacks %q: %s", want, errs[0])
		}
	}
	for _, loc := range good {
		if strings.Contains(errs[0], "location "+loc) || strings.Contains(errs[0], "location(s) "+loc) {
			t.Errorf("the error names %s, which built: %s", loc, errs[0])
		}
	}
	if !strings.Contains(res.Stdout, "Building 4 image(s), 4 at a time.") {
		t.Error("the four builds did not run at once (no \"Building 4 image(s), 4 at a time.\")")
	}

	// One whole group per build, printed as each ends: the broken build
	// ended first, while the others were still in their RUN step.
	groups := buildGroups(t, res.Stdout)
	if len(groups) != 4 {
		t.Fatalf("want 4 build log groups, got %d", len(groups))
	}
	if !strings.HasPrefix(groups[0].title, "broken → ") {
		t.Errorf("the first group to end is %q, want the broken build's: the failure waited for the others", groups[0].title)
	}
	if !strings.Contains(groupOf(t, groups, "broken").body, "missing.txt") {
		t.Errorf("the broken build's group lacks its failure:\n%s", groupOf(t, groups, "broken").body)
	}

	// The others finished: pushed, in the registry, in the comment.
	for _, loc := range good {
		body := groupOf(t, groups, loc).body
		if step := stepOf(t, body, "sleep 5 && echo "+n+"-"+loc); !strings.Contains(body, "\n"+step+" DONE ") {
			t.Errorf("the group of %s does not show its build:\n%s", loc, body)
		}
		tags, err := s.Registry.Tags(ctx, "acme/"+loc)
		if err != nil {
			t.Fatalf("%s was not pushed: %v", loc, err)
		}
		runTag := ""
		for _, tag := range tags {
			if strings.HasPrefix(tag, s.HeadSHA[:12]+"-") {
				runTag = tag
			}
		}
		if runTag == "" {
			t.Fatalf("no tag of this run among %s's tags %v", loc, tags)
		}
		digest, err := s.Registry.ManifestDigest(ctx, "acme/"+loc, runTag)
		if err != nil {
			t.Fatal(err)
		}
		ref := s.Registry.Addr + "/acme/" + loc + ":" + runTag
		if !strings.Contains(res.Stdout, "Pushed "+ref+"@"+digest) {
			t.Errorf("the log does not say %s was pushed as %s", ref, digest)
		}
		row := commentRow(t, s, loc)
		if !strings.Contains(row, "📦 pushed") || !strings.Contains(row, digest) {
			t.Errorf("comment row of %s = %s, want it pushed as %s", loc, row, digest)
		}
	}
	if tags, err := s.Registry.Tags(ctx, "acme/broken"); err == nil && len(tags) > 0 {
		t.Errorf("the broken location pushed %v", tags)
	}
	if row := commentRow(t, s, "broken"); !strings.Contains(row, "❌ failed") {
		t.Errorf("comment row of broken = %s", row)
	}
	if c := ourComments(s)[0].Body; !strings.Contains(c, "Deploy failed") {
		t.Errorf("the comment does not say the deploy failed:\n%s", c)
	}
	if res.Outputs["status"] != "failed" {
		t.Errorf("status output = %q", res.Outputs["status"])
	}
	noDeployment(t, s)
}
