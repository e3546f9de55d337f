package imagebuild

import (
	"slices"
	"strings"
	"testing"
)

func TestAnalyzeDockerfile(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		spec       Spec
		want       []string // image references, in order
		caveats    int
		wantErr    string
	}{
		{name: "one FROM", dockerfile: "FROM python:3.12-slim\nCOPY . /app\n", want: []string{"python:3.12-slim"}},
		{name: "ARG default", dockerfile: "ARG PY=3.12\nFROM python:${PY}-slim\n", want: []string{"python:3.12-slim"}},
		{name: "build arg overrides ARG default", dockerfile: "ARG PY=3.12\nFROM python:${PY}-slim\n",
			spec: Spec{BuildArgs: map[string]string{"PY": "3.11"}}, want: []string{"python:3.11-slim"}},
		{name: "ARG default from an earlier ARG", dockerfile: "ARG REG=ghcr.io/acme\nARG BASE=$REG/base\nFROM ${BASE}:1\n",
			spec: Spec{BuildArgs: map[string]string{"REG": "quay.io/acme"}}, want: []string{"quay.io/acme/base:1"}},
		{name: "ARG without default, shell default", dockerfile: "ARG V\nFROM alpine:${V:-3.20}\n", want: []string{"alpine:3.20"}},
		{name: "build arg not declared before FROM does not apply", dockerfile: "FROM alpine:3.20\nARG PY\n",
			spec: Spec{BuildArgs: map[string]string{"PY": "x"}}, want: []string{"alpine:3.20"}},
		{name: "scratch", dockerfile: "FROM scratch\nCOPY x /x\n", want: nil},
		{name: "earlier stage, case-insensitive", dockerfile: "FROM node:20 AS Base\nRUN true\nFROM base\n", want: []string{"node:20"}},
		{name: "stages and COPY --from",
			dockerfile: "FROM golang:1.22 AS build\nRUN go build\nFROM alpine:3\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\nCOPY --from=busybox:1.36 /bin/busybox /bin/\n",
			want:       []string{"golang:1.22", "alpine:3", "busybox:1.36"}},
		{name: "RUN --mount=from", dockerfile: "FROM alpine:3 AS a\nFROM debian:12\nRUN --mount=type=bind,from=a,target=/a --mount=type=bind,from=busybox:1,target=/b true\n",
			want: []string{"alpine:3", "debian:12", "busybox:1"}},
		{name: "target leaves out unused stages", dockerfile: "FROM node:20 AS dev\nFROM python:3.12 AS prod\nFROM ruby:3 AS other\n",
			spec: Spec{Target: "PROD"}, want: []string{"python:3.12"}},
		{name: "last stage and its dependencies only", dockerfile: "FROM node:20 AS dev\nFROM python:3.12 AS deps\nFROM deps\n",
			want: []string{"python:3.12"}},
		{name: "syntax directive", dockerfile: "# syntax=docker/dockerfile:1.7\nFROM alpine:3\n", want: []string{"docker/dockerfile:1.7", "alpine:3"}},
		{name: "BUILDKIT_SYNTAX overrides the directive", dockerfile: "# syntax=docker/dockerfile:1.7\nFROM alpine:3\n",
			spec: Spec{BuildArgs: map[string]string{"BUILDKIT_SYNTAX": "docker/dockerfile:1.9"}}, want: []string{"docker/dockerfile:1.9", "alpine:3"}},
		{name: "--platform flag does not matter", dockerfile: "FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nFROM alpine:3\nCOPY --from=b /x /x\n",
			want: []string{"golang:1.22", "alpine:3"}},
		{name: "TARGETARCH with a platform", dockerfile: "FROM acme/base-${TARGETARCH}:1\n",
			spec: Spec{Platform: "linux/arm64"}, want: []string{"acme/base-arm64:1"}},
		{name: "TARGETARCH without a platform", dockerfile: "FROM acme/base-${TARGETARCH}:1\n", wantErr: "depends on TARGETARCH"},
		{name: "TARGETARCH from a build argument", dockerfile: "FROM acme/base-${TARGETARCH}:1\n",
			spec: Spec{BuildArgs: map[string]string{"TARGETARCH": "amd64"}}, want: []string{"acme/base-amd64:1"}},
		{name: "BUILDARCH through an ARG default", dockerfile: "ARG BASE=acme/base-$BUILDARCH\nFROM $BASE\n", wantErr: "depends on BASE"},
		{name: "TARGETSTAGE", dockerfile: "FROM acme/${TARGETSTAGE}:1 AS app\n", want: []string{"acme/app:1"}},
		{name: "ADD of a URL", dockerfile: "FROM alpine:3\nADD https://example.com/x.tgz /x\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/y /y\nADD local.txt /z\n",
			want: []string{"alpine:3"}, caveats: 1},
		{name: "ADD in an unused stage", dockerfile: "FROM alpine:3 AS unused\nADD https://example.com/x /x\nFROM debian:12\n",
			want: []string{"debian:12"}, caveats: 0},
		{name: "unknown target", dockerfile: "FROM alpine:3 AS a\n", spec: Spec{Target: "b"}, wantErr: `target stage "b" not found`},
		{name: "empty", dockerfile: "# just a comment\n", wantErr: "no instructions"},
		{name: "no FROM", dockerfile: "ARG X=1\n", wantErr: "no FROM"},
		{name: "variable in COPY --from", dockerfile: "FROM alpine:3\nARG S=x\nCOPY --from=$S /a /a\n", wantErr: "variables are not supported"},
		{name: "bad instruction", dockerfile: "FROM alpine:3\nCOPY\n", wantErr: "COPY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts, err := analyzeDockerfile([]byte(tc.dockerfile), tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range facts.images {
				got = append(got, u.ref)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("images = %q, want %q", got, tc.want)
			}
			if len(facts.caveats) != tc.caveats {
				t.Errorf("caveats = %q, want %d", facts.caveats, tc.caveats)
			}
		})
	}
}

func TestSSHIDs(t *testing.T) {
	got := sshIDs([]string{"github=/a,/b", " default ", "default=/c", "gitlab"})
	if want := []string{"default", "github", "gitlab"}; !slices.Equal(got, want) {
		t.Errorf("sshIDs = %q, want %q", got, want)
	}
}
