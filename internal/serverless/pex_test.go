package serverless_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

func envFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDetectPEX(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  []serverless.PEXSignal
	}{
		{name: "nothing"},
		{name: "Docker deploys configured", env: map[string]string{"ENABLE_FAST_DEPLOYS": "false"},
			files: map[string]string{".github/workflows/deploy.yml": "env:\n  ENABLE_FAST_DEPLOYS: 'false'\n"}},
		{name: "env", env: map[string]string{"ENABLE_FAST_DEPLOYS": "True", "DAGSTER_BUILD_STRATEGY": "python-executable"},
			want: []serverless.PEXSignal{
				{Where: "environment variable ENABLE_FAST_DEPLOYS", What: "ENABLE_FAST_DEPLOYS=True"},
				{Where: "environment variable DAGSTER_BUILD_STRATEGY", What: "DAGSTER_BUILD_STRATEGY=python-executable"},
			}},
		{name: "serverless quickstart workflow", files: map[string]string{
			".github/workflows/dagster-plus-deploy.yml": "env:\n  DAGSTER_CLOUD_API_TOKEN: x\n  ENABLE_FAST_DEPLOYS: 'true'\n" +
				"steps:\n  - with:\n      command: \"ci build --build-strategy=python-executable --python-version 3.10\"\n",
			".github/workflows/other.yaml": "# ENABLE_FAST_DEPLOYS: 'true' (commented out)\n" +
				"      uses: dagster-io/dagster-cloud-action/actions/build_deploy_python_executable@v0.1\n",
		}, want: []serverless.PEXSignal{
			{Where: ".github/workflows/dagster-plus-deploy.yml:3", What: "ENABLE_FAST_DEPLOYS: true"},
			{Where: ".github/workflows/dagster-plus-deploy.yml:6", What: "--build-strategy=python-executable"},
			{Where: ".github/workflows/other.yaml:2", What: "the build_deploy_python_executable action"},
		}},
		{name: "GitLab", files: map[string]string{
			".gitlab-ci.yml": "include:\n  - remote: https://raw.githubusercontent.com/dagster-io/dagster-cloud-action/v1/gitlab/serverless-ci.yml\n" +
				"deploy:\n  script:\n    - /gitlab_action/deploy.py ./dagster_cloud.yaml\n" +
				"legacy:\n  - remote: https://x/gitlab/serverless-legacy-ci.yml\n" +
				"dg:\n  variables:\n    ENABLE_FAST_DEPLOYS: \"true\"\n    DAGSTER_BUILD_STRATEGY: python-executable\n",
		}, want: []serverless.PEXSignal{
			{Where: ".gitlab-ci.yml:2", What: "the dagster-cloud action's GitLab PEX template"},
			{Where: ".gitlab-ci.yml:5", What: "the dagster-cloud action's GitLab PEX deploy script"},
			{Where: ".gitlab-ci.yml:10", What: "ENABLE_FAST_DEPLOYS: true"},
			{Where: ".gitlab-ci.yml:11", What: "DAGSTER_BUILD_STRATEGY: python-executable"},
		}},
		{name: "CLI command", files: map[string]string{
			".github/workflows/deploy.yml": "run: dagster-cloud serverless deploy-python-executable --location-name=x\n",
		}, want: []serverless.PEXSignal{
			{Where: ".github/workflows/deploy.yml:1", What: "dagster-cloud serverless deploy-python-executable"},
		}},
		{name: "files elsewhere are not read", files: map[string]string{
			"docs/workflow.yml": "ENABLE_FAST_DEPLOYS: 'true'\n", ".github/workflows/sub/x.yml": "ENABLE_FAST_DEPLOYS: 'true'\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			got := serverless.DetectPEX(dir, envFrom(tc.env))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			msg := serverless.PEXMessage(got)
			if (msg == "") != (len(tc.want) == 0) {
				t.Errorf("PEXMessage = %q", msg)
			}
		})
	}
	if got := serverless.DetectPEX("", nil); got != nil {
		t.Errorf("no root, no env: %v", got)
	}
}

func TestPEXMessage(t *testing.T) {
	t.Parallel()
	var signals []serverless.PEXSignal
	for i := range 7 {
		signals = append(signals, serverless.PEXSignal{Where: ".github/workflows/w.yml:" + string(rune('1'+i)), What: "ENABLE_FAST_DEPLOYS: true"})
	}
	msg := serverless.PEXMessage(signals)
	for _, want := range []string{
		"set up for Dagster+ Serverless PEX fast deploys (ENABLE_FAST_DEPLOYS: true (.github/workflows/w.yml:1);",
		"and 2 more).",
		"deploys to Serverless with Docker images instead",
		"need Python on the runner",
		"set ENABLE_FAST_DEPLOYS to false",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if serverless.PEXMessage(nil) != "" {
		t.Error("message without signals")
	}
}
