package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The release workflow is what makes a pinned action mean something, so its ordering and
// pins are checked here on the parsed workflow, and TestReleaseWorkflowChecksBite shows that
// each check fails on a copy of the workflow broken in that one way.

const (
	fakeVersion = "v9.8.7"
	fakeImage   = "ghcr.io/acme/dbd"
	fakeRepo    = "acme/dbd"
	fakeDigest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func pushesImage(s ghStep) bool {
	return s.action() == "docker/build-push-action" && s.with("push") == "true"
}

func attests(s ghStep) bool { return s.action() == "actions/attest-build-provenance" }

func createsRelease(s ghStep) bool { return strings.Contains(s.Run, "gh release create") }

var publishingCommand = regexp.MustCompile(`\bgit push\b|\bdocker push\b|\bimagetools create\b|\bgh release (create|upload|edit)\b`)

// publishes reports whether a step changes anything outside the run: registry pushes,
// attestations, tags, releases.
func publishes(s ghStep) bool {
	return pushesImage(s) || attests(s) || publishingCommand.MatchString(s.Run)
}

var (
	majorInScript = regexp.MustCompile(`\$\{?MAJOR\b`)
	movingCommand = regexp.MustCompile(`\bgit (push|tag)\b|\bimagetools create\b|\bdocker (push|tag)\b`)
	majorInTags   = regexp.MustCompile(`(?i)major`)
)

// movesMajor reports whether a step points the major version (git tag vX, IMAGE:vX,
// IMAGE:vX-gitlab) somewhere.
func movesMajor(s ghStep) bool {
	if s.action() == "docker/build-push-action" && majorInTags.MatchString(s.with("tags")) {
		return true
	}
	return majorInScript.MatchString(s.Run) && movingCommand.MatchString(s.Run)
}

var afterFailure = regexp.MustCompile(`always\(\)|failure\(\)|cancelled\(\)`)

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// fakeEnv gives a step the environment of its job and its own `env:`, with each expression
// replaced by a stand-in value; digestVars get fakeDigest.
func fakeEnv(job ghJob, s ghStep, digestVars ...string) map[string]string {
	env := map[string]string{}
	fake := func(v string) string {
		return expression.ReplaceAllStringFunc(v, func(e string) string {
			e = strings.ToLower(e)
			switch {
			case strings.Contains(e, "version"):
				return fakeVersion
			case strings.Contains(e, "outputs.image"):
				return fakeImage
			case strings.Contains(e, "major"):
				return "v9"
			case strings.Contains(e, "github.repository"):
				return fakeRepo
			case strings.Contains(e, "token"):
				return "fake-token"
			}
			return "unused"
		})
	}
	for k, v := range job.Env {
		env[k] = fake(v)
	}
	for k, v := range s.Env {
		env[k] = fake(v)
	}
	for _, k := range digestVars {
		env[k] = fakeDigest
	}
	return env
}

// releaseProblems lists what is wrong with a release workflow.
func releaseProblems(t *testing.T, raw []byte) []string {
	t.Helper()
	w, err := parseWorkflow(raw)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// Every action by commit SHA, with its version in a comment.
	problems = append(problems, pinProblems("release.yml", raw, nil)...)

	// A failure anywhere stops everything after it.
	for _, name := range sortedKeys(w.Jobs) {
		j := w.Jobs[name]
		if afterFailure.MatchString(j.If) {
			add("job %s runs after a failure (if: %s)", name, j.If)
		}
		if j.ContinueOnError != nil {
			add("job %s has continue-on-error: its failure would not stop the release", name)
		}
		for _, s := range j.Steps {
			if afterFailure.MatchString(s.If) {
				add("job %s, step %q runs after a failure (if: %s)", name, s.label(), s.If)
			}
			if s.ContinueOnError != nil {
				add("job %s, step %q has continue-on-error: its failure would not stop the release", name, s.label())
			}
		}
	}

	// The tag check comes before anything is published.
	published := w.steps(publishes)
	if len(published) == 0 {
		add("no step publishes anything")
	}
	checks := w.steps(func(s ghStep) bool { return s.ID == "refuse-existing-tag" })
	if len(checks) != 1 {
		add("no single step refuse-existing-tag refuses a version whose tag exists (found %d)", len(checks))
	} else {
		c := checks[0]
		if w.step(c).If != "" || w.Jobs[c.job].If != "" {
			add("the tag check (%s) is conditional", w.describe(c))
		}
		for _, p := range published {
			if !w.precedes(c, p) {
				add("%s publishes before the tag check (%s) has passed", w.describe(p), w.describe(c))
			}
		}
		problems = append(problems, tagCheckProblems(t, w, c)...)
	}

	// Go is compiled natively: the binaries' job emulates nothing.
	for _, b := range w.steps(func(s ghStep) bool { return strings.Contains(s.Run, "go build") }) {
		if !strings.Contains(w.step(b).Run, "GOARCH=") {
			add("%s builds Go without setting GOARCH", w.describe(b))
		}
		for _, s := range w.Jobs[b.job].Steps[:b.idx] {
			if s.action() == "docker/setup-qemu-action" {
				add("%s compiles Go with QEMU set up; cross-compile with GOARCH instead", w.describe(b))
			}
		}
	}

	// Provenance of both images and the binaries.
	for _, target := range []string{"action", "gitlab"} {
		found := false
		for _, a := range w.steps(attests) {
			s := w.step(a)
			src, out, ok := w.source(a.job, s.with("subject-digest"))
			if ok && out == "digest" && pushesImage(w.step(src)) && w.step(src).with("target") == target &&
				s.with("subject-name") != "" && s.with("push-to-registry") == "true" {
				found = true
			}
		}
		if !found {
			add("no actions/attest-build-provenance step attests the %s image (subject-digest from its build's digest, push-to-registry true)", target)
		}
	}
	binaries := false
	for _, a := range w.steps(attests) {
		p := w.step(a).with("subject-path")
		binaries = binaries || (strings.Contains(p, "dagster-branch-deploy-linux-amd64") && strings.Contains(p, "dagster-branch-deploy-linux-arm64"))
	}
	if !binaries {
		add("no actions/attest-build-provenance step attests both binaries (subject-path)")
	}

	// The major version moves last: after every image push, attestation and the release.
	moves := w.steps(movesMajor)
	if len(moves) == 0 {
		add("no step moves the major version")
	}
	releases := w.steps(createsRelease)
	if len(releases) == 0 {
		add("no step creates the GitHub release")
	}
	before := w.steps(func(s ghStep) bool { return pushesImage(s) || attests(s) || createsRelease(s) })
	for _, m := range moves {
		for _, b := range before {
			if !w.precedes(b, m) {
				add("%s moves the major version before %s has succeeded", w.describe(m), w.describe(b))
			}
		}
	}

	problems = append(problems, runsImageProblems(t, w)...)
	return problems
}

// tagCheckProblems runs the tag check's script against a fake gh: it must fail for an
// existing tag, pass for a new one, and fail when GitHub cannot tell.
func tagCheckProblems(t *testing.T, w ghWorkflow, c stepRef) []string {
	t.Helper()
	s := w.step(c)
	log := filepath.Join(t.TempDir(), "gh.log")
	fakes := fakeCommands(t, map[string]string{
		"gh": `echo "$*" >> "$FAKE_GH_LOG"
case "$FAKE_GH_MODE:$*" in
"exists:api repos/` + fakeRepo + `/git/ref/tags/` + fakeVersion + `")
	echo '{"ref":"refs/tags/` + fakeVersion + `","object":{"type":"tag","sha":"0123456789abcdef0123456789abcdef01234567"}}'
	exit 0 ;;
broken:*)
	echo "gh: Server Error (HTTP 502)" >&2
	exit 1 ;;
*)
	echo "gh: Not Found (HTTP 404)" >&2
	exit 1 ;;
esac
`,
		"git": `echo "the tag check's test has no git" >&2; exit 97` + "\n",
	})
	var problems []string
	for _, mode := range []struct {
		name, description string
		pass              bool
	}{
		{"exists", "accepts a version whose tag exists", false},
		{"new", "refuses a new version", true},
		{"broken", "takes an API error for a new version", false},
	} {
		env := fakeEnv(w.Jobs[c.job], s)
		env["FAKE_GH_MODE"] = mode.name
		env["FAKE_GH_LOG"] = log
		env["GITHUB_OUTPUT"] = filepath.Join(t.TempDir(), "output")
		run, err := runStepScript(t, s, t.TempDir(), env, fakes+":/usr/bin:/bin")
		if err != nil {
			return []string{err.Error()}
		}
		if (run.exitCode == 0) != mode.pass {
			problems = append(problems, fmt.Sprintf("the tag check (%s) %s (exit %d): %s", w.describe(c), mode.description, run.exitCode, run.output))
		}
	}
	return problems
}

// runsImageProblems checks the step that writes action.yml's runs.image: its digest comes
// from the build of the action's image, and running it (with stand-in values) writes
// docker://IMAGE:VERSION@DIGEST into action.yml and points the reusable workflow's action
// at VERSION, changing nothing else, before the release commit is made and pushed.
func runsImageProblems(t *testing.T, w ghWorkflow) []string {
	t.Helper()
	writers := w.steps(func(s ghStep) bool {
		return strings.Contains(s.Run, "action.yml") && strings.Contains(s.Run, "image:")
	})
	if len(writers) != 1 {
		return []string{fmt.Sprintf("no single step writes runs.image in action.yml (found %d)", len(writers))}
	}
	wr := writers[0]
	s, job := w.step(wr), w.Jobs[wr.job]
	var digestVars []string
	for _, env := range []map[string]string{job.Env, s.Env} {
		for k, v := range env {
			src, out, ok := w.source(wr.job, v)
			if ok && out == "digest" && pushesImage(w.step(src)) && w.step(src).with("target") == "action" {
				digestVars = append(digestVars, k)
			}
		}
	}
	if len(digestVars) == 0 {
		return []string{fmt.Sprintf("%s does not get the digest of the action's image (the digest output of its docker/build-push-action step) in its env", w.describe(wr))}
	}
	var problems []string
	commit, push := false, false
	for _, later := range job.Steps[wr.idx+1:] {
		commit = commit || strings.Contains(later.Run, "git commit")
		push = push || (commit && strings.Contains(later.Run, "git push"))
	}
	if !commit || !push {
		problems = append(problems, fmt.Sprintf("job %s does not commit and push what %s writes", wr.job, w.describe(wr)))
	}

	dir := t.TempDir()
	originals := map[string][]byte{}
	for _, f := range []string{"action.yml", ".github/workflows/deploy.yml"} {
		data, err := os.ReadFile(filepath.Join(root(t), f))
		if err != nil {
			t.Fatal(err)
		}
		originals[f] = data
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fakes := fakeCommands(t, map[string]string{"git": `exit 0` + "\n"})
	run, err := runStepScript(t, s, dir, fakeEnv(job, s, digestVars...), fakes+":/usr/bin:/bin")
	if err != nil {
		return append(problems, err.Error())
	}
	if run.exitCode != 0 {
		return append(problems, fmt.Sprintf("%s failed (exit %d) with a good digest: %s", w.describe(wr), run.exitCode, run.output))
	}

	want := "docker://" + fakeImage + ":" + fakeVersion + "@" + fakeDigest
	written, _ := os.ReadFile(filepath.Join(dir, "action.yml"))
	var meta struct {
		Runs struct {
			Image string `yaml:"image"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(written, &meta); err != nil {
		problems = append(problems, fmt.Sprintf("%s leaves action.yml unparsable: %v", w.describe(wr), err))
	} else if meta.Runs.Image != want {
		problems = append(problems, fmt.Sprintf("%s writes runs.image %q, want %q (the tag and the digest of the action's image)", w.describe(wr), meta.Runs.Image, want))
	}
	problems = append(problems, onlyLineChanged("action.yml", originals["action.yml"], written, "  image: ")...)

	written, _ = os.ReadFile(filepath.Join(dir, ".github/workflows/deploy.yml"))
	reusable, err := parseWorkflow(written)
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s leaves deploy.yml unparsable: %v", w.describe(wr), err))
	}
	calls := 0
	for _, j := range reusable.Jobs {
		for _, st := range j.Steps {
			if st.action() == "dagster-branch-deploy/dagster-branch-deploy" {
				calls++
				if st.Uses != "dagster-branch-deploy/dagster-branch-deploy@"+fakeVersion {
					problems = append(problems, fmt.Sprintf("%s leaves the reusable workflow calling %s, want the release's own tag %s", w.describe(wr), st.Uses, fakeVersion))
				}
			}
		}
	}
	if calls != 1 {
		problems = append(problems, fmt.Sprintf("the reusable workflow calls the action %d times after %s, want once", calls, w.describe(wr)))
	}
	problems = append(problems, onlyLineChanged("deploy.yml", originals[".github/workflows/deploy.yml"], written, "        uses: dagster-branch-deploy/dagster-branch-deploy@")...)
	return problems
}

// onlyLineChanged reports lines of after that differ from before, except the one line that
// starts with prefix.
func onlyLineChanged(name string, before, after []byte, prefix string) []string {
	b, a := strings.Split(string(before), "\n"), strings.Split(string(after), "\n")
	if len(a) != len(b) {
		return []string{fmt.Sprintf("%s: the release changes its number of lines (%d → %d)", name, len(b), len(a))}
	}
	var problems []string
	for i := range b {
		if a[i] != b[i] && !strings.HasPrefix(b[i], prefix) {
			problems = append(problems, fmt.Sprintf("%s:%d: the release changes %q to %q", name, i+1, b[i], a[i]))
		}
	}
	return problems
}

func readRelease(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(t), ".github/workflows/release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestReleaseWorkflow checks the release workflow's pins and ordering.
func TestReleaseWorkflow(t *testing.T) {
	t.Parallel()
	for _, p := range releaseProblems(t, readRelease(t)) {
		t.Error(p)
	}
}

// TestReleaseWorkflowChecksBite breaks a copy of release.yml in one way per case and
// expects the checks of TestReleaseWorkflow to say so.
func TestReleaseWorkflowChecksBite(t *testing.T) {
	t.Parallel()
	raw := string(readRelease(t))
	type edit struct{ old, new string }
	for _, c := range []struct {
		name  string
		edits []edit
		want  string
	}{
		{"an action pinned by tag",
			[]edit{{"docker/login-action@c94ce9fb468520275223c153574b00df6fe4bcc9 # v3.7.0", "docker/login-action@v3"}},
			"docker/login-action@v3 is not pinned by a full commit SHA"},
		{"an action pinned by a short SHA",
			[]edit{{"docker/setup-qemu-action@c7c53464625b32c7a7e944ae62b3e17d2b600130", "docker/setup-qemu-action@c7c5346"}},
			"is not pinned by a full commit SHA"},
		{"a SHA without its version",
			[]edit{{"actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2", "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"}},
			"has no version comment"},
		{"no tag check",
			[]edit{{"id: refuse-existing-tag", "id: tag"}},
			"no single step refuse-existing-tag"},
		{"a tag check that looks at another tag",
			[]edit{{`git/ref/tags/${VERSION}"`, `git/ref/tags/${VERSION}-rc"`}},
			"accepts a version whose tag exists"},
		{"a tag check that takes errors for a new version",
			[]edit{{`if ! grep -qF "(HTTP 404)" <<<"$answer"; then`, `if false; then`}},
			"takes an API error for a new version"},
		{"a tag check that may be skipped",
			[]edit{{"        id: refuse-existing-tag\n", "        id: refuse-existing-tag\n        if: github.run_attempt == 1\n"}},
			"is conditional"},
		{"something published before the tag check",
			[]edit{{"    needs: check\n", ""}},
			`job binaries, step "Attest the binaries" publishes before the tag check`},
		{"a job that runs after a failure",
			[]edit{{"    needs: [check, images, release]\n", "    needs: [check, images, release]\n    if: always()\n"}},
			"runs after a failure"},
		{"an attestation allowed to fail",
			[]edit{{"      - name: Attest the binaries\n", "      - name: Attest the binaries\n        continue-on-error: true\n"}},
			"has continue-on-error"},
		{"the major version moved before the release",
			[]edit{{"needs: [check, images, release]", "needs: [check, images]"}},
			"moves the major version before job release"},
		{"the major image tag pushed with the build",
			[]edit{{"          tags: ${{ env.IMAGE }}:${{ env.VERSION }}\n", "          tags: |\n            ${{ env.IMAGE }}:${{ env.VERSION }}\n            ${{ env.IMAGE }}:${{ needs.check.outputs.major }}\n"}},
			`job images, step "Build and push the action's image" moves the major version before`},
		{"the GitLab image not attested",
			[]edit{{"subject-digest: ${{ steps.gitlab-image.outputs.digest }}", "subject-digest: ${{ steps.action-image.outputs.digest }}"}},
			"attests the gitlab image"},
		{"the binaries not attested",
			[]edit{{"            ${{ runner.temp }}/dist/dagster-branch-deploy-linux-arm64\n      - uses: actions/upload-artifact", "      - uses: actions/upload-artifact"}},
			"attests both binaries"},
		{"Go compiled under QEMU",
			[]edit{{"          cache: false # a release builds from nothing a cache could have changed\n", "          cache: false\n      - uses: docker/setup-qemu-action@c7c53464625b32c7a7e944ae62b3e17d2b600130 # v3.7.0\n"}},
			"compiles Go with QEMU"},
		{"runs.image by tag only",
			[]edit{{`image="docker://${IMAGE}:${VERSION}@${DIGEST}"`, `image="docker://${IMAGE}:${VERSION}"`}},
			"writes runs.image"},
		{"runs.image from the GitLab image's digest",
			[]edit{{"DIGEST: ${{ needs.images.outputs.action-digest }}", "DIGEST: ${{ needs.images.outputs.gitlab-digest }}"}},
			"does not get the digest of the action's image"},
		{"the reusable workflow left at v1",
			[]edit{{`          sed -i "s|^\( *uses: dagster-branch-deploy/dagster-branch-deploy\)@.*|\1@${VERSION}|" .github/workflows/deploy.yml` + "\n", ""},
				{`          grep -qxE " *uses: dagster-branch-deploy/dagster-branch-deploy@${VERSION//./\\.}" .github/workflows/deploy.yml` + "\n", ""}},
			"leaves the reusable workflow calling dagster-branch-deploy/dagster-branch-deploy@v1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			broken := raw
			for _, e := range c.edits {
				if !strings.Contains(broken, e.old) {
					t.Fatalf("release.yml no longer contains %q; update this case", e.old)
				}
				broken = strings.ReplaceAll(broken, e.old, e.new)
			}
			problems := releaseProblems(t, []byte(broken))
			for _, p := range problems {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("release.yml with %s passed (want a problem containing %q); problems: %q", c.name, c.want, problems)
		})
	}
}
