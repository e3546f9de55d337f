package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
)

// raceDocker answers ImageBuild with the classic builder's cache-probe race for the first
// failures builds, then with a successful stream; other errors come from the embedded nil
// DockerAPI (a panic: the test must not reach them).
type raceDocker struct {
	DockerAPI
	failures int
	message  string
	builds   int
}

func (d *raceDocker) ImageBuild(_ context.Context, body io.Reader, _ build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	_, _ = io.Copy(io.Discard, body)
	d.builds++
	stream := `{"stream":"Step 1/2 : FROM scratch\n"}` + "\n"
	if d.builds <= d.failures {
		stream += `{"errorDetail":{"message":` + jsonString(d.message) + `},"error":` + jsonString(d.message) + `}` + "\n"
	} else {
		stream += `{"aux":{"ID":"sha256:` + strings.Repeat("ab", 32) + `"}}` + "\n"
	}
	return build.ImageBuildResponse{Body: io.NopCloser(strings.NewReader(stream))}, nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestClassicBuildRetriesTheCacheProbeRace(t *testing.T) {
	t.Parallel()
	const race = `unable to find image "sha256:b842a99205033840ffe71292105a2df7927faca495397500cfc7243e2bd2b689"`
	for _, tc := range []struct {
		name       string
		failures   int
		message    string
		wantBuilds int
		wantErr    string
	}{
		{"no race", 0, race, 1, ""},
		{"one race", 1, race, 2, ""},
		{"races on every attempt", 5, race, classicCacheRaceAttempts, "unable to find image"},
		{"another failure is not retried", 5, "The command '/bin/sh -c false' returned a non-zero code: 1", 1, "non-zero code"},
		{"a missing FROM image is not retried", 5, `pull access denied for nothere, repository does not exist`, 1, "pull access denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			d := &raceDocker{failures: tc.failures, message: tc.message}
			var log bytes.Buffer
			b := useBuilder(NewBuilder(d, &log), false)
			id, err := b.Build(context.Background(), Spec{ContextDir: dir, Tags: []string{"r.example/x:y"}})
			if d.builds != tc.wantBuilds {
				t.Errorf("builds = %d, want %d", d.builds, tc.wantBuilds)
			}
			if tc.wantErr == "" {
				if err != nil || id == "" {
					t.Fatalf("Build = %q, %v; want an image ID", id, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Build error = %v, want one containing %q", err, tc.wantErr)
			}
			retries := strings.Count(log.String(), "building again")
			if want := tc.wantBuilds - 1; retries != want {
				t.Errorf("log has %d retry lines, want %d:\n%s", retries, want, log.String())
			}
		})
	}
}
