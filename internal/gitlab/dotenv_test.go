package gitlab

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// parseDotenv reads a dotenv report as GitLab's Ci::ParseDotenvArtifactService
// does: smaller than 5 KiB, every line `^(.*?)=(.*)$` with both sides
// stripped, keys [a-zA-Z0-9_]+ (Ci::JobVariable's validation).
func parseDotenv(t *testing.T, b []byte) map[string]string {
	t.Helper()
	if len(b) >= MaxDotenvBytes {
		t.Fatalf("dotenv report of %d bytes: GitLab refuses it", len(b))
	}
	line := regexp.MustCompile(`^(.*?)=(.*)$`)
	key := regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	out := map[string]string{}
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		m := line.FindStringSubmatch(strings.TrimSuffix(l, "\n"))
		if m == nil {
			t.Fatalf("GitLab cannot read line %q: Invalid Format", l)
		}
		k, v := strings.TrimSpace(m[1]), strings.TrimSpace(m[2])
		if !key.MatchString(k) {
			t.Fatalf("key %q is not valid", k)
		}
		out[k] = v
	}
	return out
}

func outputs(deployment, url, images, status string) []platform.Output {
	return []platform.Output{{Name: "deployment", Value: deployment}, {Name: "deployment_url", Value: url}, {Name: "images", Value: images}, {Name: "status", Value: status}}
}

func TestDotenv(t *testing.T) {
	t.Parallel()
	images := `{"quickstart_etl":"docker.io/acme/qs@sha256:` + strings.Repeat("0", 64) + `","b":"x=y"}`
	bigImages := `{"a":"` + strings.Repeat("r", MaxDotenvBytes) + `"}`
	tests := []struct {
		name    string
		outs    []platform.Output
		want    map[string]string
		wantErr string
	}{
		{"all four", outputs("feature-x", "https://acme.dagster.cloud/feature-x/locations", images, "success"),
			map[string]string{"DAGSTER_DEPLOYMENT": "feature-x", "DAGSTER_DEPLOYMENT_URL": "https://acme.dagster.cloud/feature-x/locations", "DAGSTER_IMAGES": images, "DAGSTER_STATUS": "success"}, ""},
		{"empty values are left out, white space trimmed", outputs("", "  https://x/y \t", "", "closed"),
			map[string]string{"DAGSTER_DEPLOYMENT_URL": "https://x/y", "DAGSTER_STATUS": "closed"}, ""},
		{"quotes are kept as GitLab keeps them", outputs(`"quoted"`, "", "", `'s'`),
			map[string]string{"DAGSTER_DEPLOYMENT": `"quoted"`, "DAGSTER_STATUS": `'s'`}, ""},
		{"a line break would make a second line", outputs("prod\nEVIL=1", "", "", "success"),
			map[string]string{"DAGSTER_STATUS": "success"}, "DAGSTER_DEPLOYMENT was left out of the dotenv report: its value has a line break"},
		{"carriage return", outputs("prod", "https://x\r", "", "fail\red"),
			map[string]string{"DAGSTER_DEPLOYMENT": "prod", "DAGSTER_DEPLOYMENT_URL": "https://x"}, "DAGSTER_STATUS was left out"},
		{"invalid UTF-8", outputs("pr\xffod", "", "", "success"), map[string]string{"DAGSTER_STATUS": "success"}, "DAGSTER_DEPLOYMENT was left out"},
		{"too large for GitLab's limit: the images are left out", outputs("prod", "https://x", bigImages, "success"),
			map[string]string{"DAGSTER_DEPLOYMENT": "prod", "DAGSTER_DEPLOYMENT_URL": "https://x", "DAGSTER_STATUS": "success"},
			"DAGSTER_IMAGES was left out of the dotenv report: with it the file would reach GitLab's limit of 5120 bytes"},
		{"other outputs are not written", []platform.Output{{Name: "other", Value: "x"}, {Name: "status", Value: "merged"}},
			map[string]string{"DAGSTER_STATUS": "merged"}, ""},
		{"nothing", nil, map[string]string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "dagster.env")
			err := writeDotenv(path, tc.outs)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			got := parseDotenv(t, b)
			if len(got) != len(tc.want) {
				t.Errorf("variables %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestOutputs: Options.Dotenv, relative to CI_PROJECT_DIR; "" writes none.
func TestOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"CI_PROJECT_DIR": dir}
	outs := outputs("prod", "https://acme.dagster.cloud/prod/locations", `{}`, "success")
	if err := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{}).Outputs(outs); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("wrote %v without Options.Dotenv", entries)
	}
	if err := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{Dotenv: "dagster.env"}).Outputs(outs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "dagster.env"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "DAGSTER_DEPLOYMENT=prod\nDAGSTER_DEPLOYMENT_URL=https://acme.dagster.cloud/prod/locations\nDAGSTER_STATUS=success\nDAGSTER_IMAGES={}\n" {
		t.Errorf("report %q", b)
	}
	abs := filepath.Join(t.TempDir(), "abs.env")
	if err := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{Dotenv: abs}).Outputs(outs[:1]); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(abs); string(b) != "DAGSTER_DEPLOYMENT=prod\n" {
		t.Errorf("absolute path: %q", b)
	}
	if err := NewCI(mapEnv(env), &bytes.Buffer{}, &bytes.Buffer{}, nil, Options{Dotenv: "no/such/dir/x.env"}).Outputs(outs); err == nil {
		t.Error("no error for a directory that is not there")
	}
}
