package serverless_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

var dockerTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func TestImageTag(t *testing.T) {
	t.Parallel()
	const sha = "3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
	for _, tc := range []struct {
		name    string
		in      serverless.TagInput
		want    string
		wantLen int    // instead of want, for long tags
		prefix  string // the long tag starts with it
		wantErr string
	}{
		{name: "branch deployment", in: serverless.TagInput{Branch: true, Deployment: "8f1d2c3b4a59", Location: "quickstart_etl",
			Commit: sha, Run: "12345678", Attempt: "2"}, want: "branch-quickstart_etl-3f2c1a9e8b7d-12345678-2"},
		{name: "full deployment", in: serverless.TagInput{Deployment: "prod", Location: "quickstart_etl",
			Commit: sha, Run: "12345678", Attempt: "1"}, want: "prod-quickstart_etl-3f2c1a9e8b7d-12345678-1"},
		{name: "GitLab ids", in: serverless.TagInput{Deployment: "prod", Location: "etl", Commit: sha[:8],
			Run: "987654", Attempt: "4455667"}, want: "prod-etl-3f2c1a9e-987654-4455667"},
		{name: "no run or attempt", in: serverless.TagInput{Branch: true, Location: "etl", Commit: sha},
			want: "branch-etl-3f2c1a9e8b7d"},
		{name: "no commit", in: serverless.TagInput{Deployment: "prod", Location: "etl", Run: "1", Attempt: "1"},
			want: "prod-etl-1-1"},
		{name: "characters a tag cannot hold get a hash", in: serverless.TagInput{Branch: true, Location: "my loc/ä",
			Commit: sha, Run: "1", Attempt: "1"}, want: "branch-my-loc-" + hash8("my loc/ä") + "-3f2c1a9e8b7d-1-1"},
		{name: "long location is shortened with a hash", in: serverless.TagInput{Deployment: "prod",
			Location: strings.Repeat("location_", 20), Commit: sha, Run: "12345678901", Attempt: "3"},
			wantLen: 128, prefix: "prod-location_location_"},
		{name: "long deployment too", in: serverless.TagInput{Deployment: strings.Repeat("d", 200),
			Location: strings.Repeat("l", 200), Commit: sha, Run: "1", Attempt: "1"}, wantLen: 128, prefix: "ddd"},
		{name: "deployment starting with a dot", in: serverless.TagInput{Deployment: ".x", Location: "etl", Commit: sha},
			want: "x-etl-3f2c1a9e8b7d"},
		{name: "no location", in: serverless.TagInput{Branch: true, Commit: sha}, wantErr: "no code location name"},
		{name: "no deployment", in: serverless.TagInput{Location: "etl", Commit: sha}, wantErr: "no deployment name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := serverless.ImageTag(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !dockerTag.MatchString(got) {
				t.Errorf("%q is not a valid Docker tag", got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("tag = %q, want %q", got, tc.want)
			}
			if tc.wantLen != 0 && (len(got) != tc.wantLen || !strings.HasPrefix(got, tc.prefix)) {
				t.Errorf("tag = %q (%d), want %d characters starting with %q", got, len(got), tc.wantLen, tc.prefix)
			}
		})
	}

	// Locations that differ only in characters a tag cannot hold, or only
	// after the cut of a long name, keep different tags.
	a, _ := serverless.ImageTag(serverless.TagInput{Branch: true, Location: "a b", Commit: sha})
	b, _ := serverless.ImageTag(serverless.TagInput{Branch: true, Location: "a-b", Commit: sha})
	long := strings.Repeat("x", 150)
	c, _ := serverless.ImageTag(serverless.TagInput{Branch: true, Location: long + "1", Commit: sha})
	d, _ := serverless.ImageTag(serverless.TagInput{Branch: true, Location: long + "2", Commit: sha})
	if a == b || c == d {
		t.Errorf("tags collide: %q %q / %q %q", a, b, c, d)
	}
}

func hash8(s string) string {
	// The package's short hash: 8 hex digits of SHA-256.
	tag, _ := serverless.ImageTag(serverless.TagInput{Branch: true, Location: s})
	i := strings.LastIndex(tag, "-")
	return tag[i+1:]
}

func TestImageRef(t *testing.T) {
	t.Parallel()
	const ecr = "123456789012.dkr.ecr.us-west-2.amazonaws.com/dagster-cloud-serverless-acme"
	for _, tc := range []struct {
		name     string
		url      string
		location string
		tag      string
		harbor   bool
		want     string
		wantErr  string
	}{
		{name: "ECR", url: ecr, location: "quickstart_etl", tag: "prod-quickstart_etl-3f2c-1-1",
			want: ecr + ":prod-quickstart_etl-3f2c-1-1"},
		{name: "ECR ignores the location", url: ecr + "/", tag: "t", want: ecr + ":t"},
		{name: "Harbor", url: "harbor.dagster.cloud/serverless/acme-prod", location: "quickstart_etl", tag: "t", harbor: true,
			want: "harbor.dagster.cloud/serverless/acme-prod/quickstart_etl:t"},
		{name: "Harbor location cleaned", url: "harbor.dagster.cloud/serverless/acme-prod", location: "My Location", tag: "t",
			harbor: true, want: "harbor.dagster.cloud/serverless/acme-prod/my-location-" + hash8("My Location") + ":t"},
		{name: "local registry with a port", url: "127.0.0.1:5000/dagster-serverless", location: "etl", tag: "branch-etl-1",
			want: "127.0.0.1:5000/dagster-serverless:branch-etl-1"},
		{name: "Harbor without location", url: "h.example.com/p", tag: "t", harbor: true, wantErr: "needs the code location name"},
		{name: "no URL", tag: "t", wantErr: "gave no registry URL"},
		{name: "scheme", url: "https://" + ecr, tag: "t", wantErr: "has a scheme"},
		{name: "URL with a tag", url: ecr + ":latest", tag: "t", wantErr: "image reference"},
		{name: "URL with a digest", url: ecr + "@sha256:" + strings.Repeat("a", 64), tag: "t", wantErr: "image reference"},
		{name: "bad tag", url: ecr, tag: "-t", wantErr: "not a valid tag"},
		{name: "tag too long", url: ecr, tag: strings.Repeat("t", 129), wantErr: "not a valid tag"},
		{name: "upper-case repository", url: "registry.example.com/Acme", tag: "t", wantErr: "image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := serverless.ImageRef(tc.url, tc.location, tc.tag, tc.harbor)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ImageRef = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ImageRef = %q, %v; want %q", got, err, tc.want)
			}
			named, err := reference.ParseNamed(got)
			if err != nil {
				t.Fatalf("%q does not parse as a canonical reference: %v", got, err)
			}
			if _, ok := named.(reference.NamedTagged); !ok {
				t.Errorf("%q has no tag", got)
			}
		})
	}

	// Every location name gives a valid Harbor repository.
	for _, loc := range []string{"etl", "ETL", "a__b", "a___b", "a.-b", "-x-", "_", "ünïcode", "a..b", "x" + strings.Repeat("_y", 50)} {
		got, err := serverless.ImageRef("h.example.com/p", loc, "t", true)
		if err != nil {
			t.Errorf("location %q: %v", loc, err)
			continue
		}
		if _, err := reference.ParseNamed(got); err != nil {
			t.Errorf("location %q: %q: %v", loc, got, err)
		}
	}
}

func TestDefaultHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		agentType  string
		agentQueue bool
		want       time.Duration
	}{
		{"SERVERLESS", false, 900 * time.Second},
		{"SERVERLESS", true, 120 * time.Second},
		{"HYBRID", false, 120 * time.Second},
		{"", false, 120 * time.Second},
	} {
		if got := serverless.DefaultHeartbeatTimeout(tc.agentType, tc.agentQueue); got != tc.want {
			t.Errorf("DefaultHeartbeatTimeout(%q, %t) = %v, want %v", tc.agentType, tc.agentQueue, got, tc.want)
		}
	}
}
