package serverless

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// PEXSignal is one sign that a project is set up for Dagster+ Serverless PEX
// "fast deploys".
type PEXSignal struct {
	// Where is "environment variable NAME" or "<file>:<line>" (the file
	// relative to the repository root).
	Where string
	// What is the setting found there.
	What string
}

func (s PEXSignal) String() string { return s.What + " (" + s.Where + ")" }

// How upstream sets a project up for PEX deploys:
//
//   - GitHub: the workflow's env ENABLE_FAST_DEPLOYS: 'true' (the
//     serverless quickstart's and the dagster-cloud action's templates); the
//     action's prerun step then answers pex-deploy, and the workflow runs
//     `dagster-cloud ci build --build-strategy=python-executable` or the
//     build_deploy_python_executable action. Docker deploys are
//     ENABLE_FAST_DEPLOYS: 'false'.
//   - dg: `dg plus deploy` with --build-strategy=python-executable (env
//     DAGSTER_BUILD_STRATEGY); dg's scaffolded GitLab template sets
//     ENABLE_FAST_DEPLOYS: "true" too.
//   - GitLab (dagster-cloud action's gitlab/serverless-ci.yml): the job
//     runs /gitlab_action/deploy.py, i.e. `dagster-cloud serverless
//     deploy-python-executable`; Docker deploys use serverless-legacy-ci.yml.
//   - CLI: `dagster-cloud serverless deploy-python-executable`.
//
// dagster_cloud.yaml and dg.toml have no PEX setting: it lives in the CI
// configuration only.
var pexPatterns = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bENABLE_FAST_DEPLOYS\b["']?\s*[:=]\s*["']?true\b`), "ENABLE_FAST_DEPLOYS: true"},
	{regexp.MustCompile(`--build-strategy[= ]["']?python-executable\b`), "--build-strategy=python-executable"},
	{regexp.MustCompile(`\bDAGSTER_BUILD_STRATEGY\b["']?\s*[:=]\s*["']?python-executable\b`), "DAGSTER_BUILD_STRATEGY: python-executable"},
	{regexp.MustCompile(`\bbuild_deploy_python_executable\b`), "the build_deploy_python_executable action"},
	{regexp.MustCompile(`\bdeploy-python-executable\b`), "dagster-cloud serverless deploy-python-executable"},
	{regexp.MustCompile(`gitlab_action/deploy\.py\b`), "the dagster-cloud action's GitLab PEX deploy script"},
	{regexp.MustCompile(`\bgitlab/(dbt/)?serverless-ci(-dbt)?\.yml\b`), "the dagster-cloud action's GitLab PEX template"},
}

const (
	maxPEXFiles    = 64
	maxPEXFileSize = 1 << 20
)

// DetectPEX reports the signs that the project is set up for PEX fast
// deploys: the environment variables ENABLE_FAST_DEPLOYS=true and
// DAGSTER_BUILD_STRATEGY=python-executable (as read by lookupEnv; nil
// skips them), and the settings above in the repository's CI files
// (.github/workflows/*.yml|yaml, .gitlab-ci.yml|yaml) under repoRoot ("" skips
// them). Lines starting with # are skipped. Unreadable files are skipped:
// the detection only decides whether to print a message.
func DetectPEX(repoRoot string, lookupEnv func(string) (string, bool)) []PEXSignal {
	var out []PEXSignal
	if lookupEnv != nil {
		if v, ok := lookupEnv("ENABLE_FAST_DEPLOYS"); ok && strings.EqualFold(strings.TrimSpace(v), "true") {
			out = append(out, PEXSignal{Where: "environment variable ENABLE_FAST_DEPLOYS", What: "ENABLE_FAST_DEPLOYS=" + v})
		}
		if v, ok := lookupEnv("DAGSTER_BUILD_STRATEGY"); ok && strings.TrimSpace(v) == "python-executable" {
			out = append(out, PEXSignal{Where: "environment variable DAGSTER_BUILD_STRATEGY", What: "DAGSTER_BUILD_STRATEGY=python-executable"})
		}
	}
	if repoRoot == "" {
		return out
	}
	var files []string
	for _, pattern := range []string{".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml", ".gitlab-ci.yaml"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot, filepath.FromSlash(pattern)))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) > maxPEXFiles {
		files = files[:maxPEXFiles]
	}
	for _, f := range files {
		rel, err := filepath.Rel(repoRoot, f)
		if err != nil {
			rel = f
		}
		out = append(out, scanPEX(f, filepath.ToSlash(rel))...)
	}
	return out
}

func scanPEX(path, rel string) []PEXSignal {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []PEXSignal
	sc := bufio.NewScanner(io.LimitReader(f, maxPEXFileSize))
	sc.Buffer(make([]byte, 64*1024), maxPEXFileSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, p := range pexPatterns {
			if p.re.MatchString(line) {
				out = append(out, PEXSignal{Where: fmt.Sprintf("%s:%d", rel, n), What: p.what})
				break
			}
		}
	}
	return out
}

// PEXMessage is the one message to print when DetectPEX found signs of a PEX
// setup, "" when it found none.
func PEXMessage(signals []PEXSignal) string {
	if len(signals) == 0 {
		return ""
	}
	const maxListed = 5
	var found []string
	for i, s := range signals {
		if i == maxListed {
			found = append(found, fmt.Sprintf("and %d more", len(signals)-maxListed))
			break
		}
		found = append(found, s.String())
	}
	return "This project is set up for Dagster+ Serverless PEX fast deploys (" + strings.Join(found, "; ") + "). " +
		"dagster-branch-deploy deploys to Serverless with Docker images instead: PEX builds need Python on the runner, " +
		"which this action does not have. Each code location is built from its own Dockerfile, or from a generated one " +
		"(FROM python:<python_version>-slim, installing requirements.txt, setup.py or pyproject.toml), pushed to the " +
		"registry Dagster+ hands out, and deployed as an image. No change is needed for that; to silence this message, " +
		"set ENABLE_FAST_DEPLOYS to false or remove the PEX settings listed."
}
