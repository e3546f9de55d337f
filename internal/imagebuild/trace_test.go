package imagebuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// at is t0 plus sec seconds, as a protobuf timestamp.
func at(sec float64) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(sec * float64(time.Second))))
}

// traceMsg encodes sr the way dockerd does: protobuf, as a JSON (base64) string, in an aux
// message with id moby.buildkit.trace.
func traceMsg(t *testing.T, sr *controlapi.StatusResponse) string {
	t.Helper()
	dt, err := sr.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	aux, err := json.Marshal(dt)
	if err != nil {
		t.Fatal(err)
	}
	line, err := json.Marshal(map[string]any{"id": traceAuxID, "aux": json.RawMessage(aux)})
	if err != nil {
		t.Fatal(err)
	}
	return string(line)
}

func vtx(d, name string, started, completed *timestamppb.Timestamp) *controlapi.Vertex {
	return &controlapi.Vertex{Digest: d, Name: name, Started: started, Completed: completed}
}

func vlog(d string, ts float64, msg string) *controlapi.VertexLog {
	return &controlapi.VertexLog{Vertex: d, Timestamp: at(ts), Msg: []byte(msg), Stream: 1}
}

func TestTracePrinter(t *testing.T) {
	t.Parallel()
	cached := vtx("sha256:v2", "[1/2] FROM docker.io/library/base", at(0.2), at(0.2))
	cached.Cached = true
	failed := vtx("sha256:a1", "[a 1/2] RUN build-a", at(1), at(2.25))
	failed.Error = "executor failed running [/bin/sh -c build-a]: exit code: 3"
	canceled := vtx("sha256:b1", "[b 1/2] RUN build-b", at(1), at(2.3))
	canceled.Error = "context canceled"

	tests := []struct {
		name     string
		msgs     []*controlapi.StatusResponse
		extra    []string // raw stream lines after the trace messages
		wantLog  string
		wantErr  []string // substrings of the error; nil for success
		wantStep string
		wantTail []string
		wantCode int
	}{
		{
			name: "success with status, cached step, split output and a step that never starts",
			msgs: []*controlapi.StatusResponse{
				{Vertexes: []*controlapi.Vertex{vtx("sha256:v1", "[internal] load build definition from Dockerfile", at(0), nil)}},
				{
					Vertexes: []*controlapi.Vertex{vtx("sha256:v1", "[internal] load build definition from Dockerfile", at(0), at(0.1))},
					Statuses: []*controlapi.VertexStatus{{ID: "transferring dockerfile:", Vertex: "sha256:v1", Current: 37, Completed: at(0.05)}},
				},
				{Vertexes: []*controlapi.Vertex{cached, vtx("sha256:v4", "[2/3] COPY never", nil, nil)}},
				{
					Vertexes: []*controlapi.Vertex{vtx("sha256:v3", "[2/2] RUN echo hi", at(1), nil)},
					Logs:     []*controlapi.VertexLog{vlog("sha256:v3", 1.25, "hi\npart")},
				},
				{
					Vertexes: []*controlapi.Vertex{vtx("sha256:v3", "[2/2] RUN echo hi", at(1), at(2.5))},
					Logs:     []*controlapi.VertexLog{vlog("sha256:v3", 1.5, "ial\n\x1b[31mred\x1b[0m\r\nno newline")},
				},
				{
					Vertexes: []*controlapi.Vertex{vtx("sha256:v5", "exporting to image", at(2.6), at(2.7))},
					Statuses: []*controlapi.VertexStatus{
						{ID: "exporting layers", Vertex: "sha256:v5", Completed: at(2.6)},
						{ID: "sha256:layer", Vertex: "sha256:v5", Current: 2_400_000, Total: 2_400_000, Completed: at(2.6)},
						{ID: "sha256:layer", Vertex: "sha256:v5", Current: 2_400_000, Total: 2_400_000, Completed: at(2.6)}, // repeated
						{ID: "still going", Vertex: "sha256:v5", Current: 10},
					},
				},
			},
			extra: []string{`{"id":"moby.image.id","aux":{"ID":"sha256:feed"}}`, `{"stream":"Successfully tagged x:y\n"}`},
			wantLog: "#1 [internal] load build definition from Dockerfile\n" +
				"#1 transferring dockerfile: 37B done\n" +
				"#1 DONE 0.1s\n" +
				"\n#2 [1/2] FROM docker.io/library/base\n" +
				"#2 CACHED\n" +
				"\n#3 [2/2] RUN echo hi\n" +
				"#3 0.250 hi\n" +
				"#3 0.500 partial\n" +
				"#3 0.500 \x1b[31mred\x1b[0m\n" +
				"#3 0.500 no newline\n" +
				"#3 DONE 1.5s\n" +
				"\n#4 exporting to image\n" +
				"#4 exporting layers done\n" +
				"#4 sha256:layer 2.4MB / 2.4MB done\n" +
				"#4 DONE 0.1s\n" +
				"Successfully tagged x:y\n",
		},
		{
			name: "steps that start together are followed one at a time",
			msgs: []*controlapi.StatusResponse{
				{Vertexes: []*controlapi.Vertex{
					vtx("sha256:v1", "[1/3] FROM base", at(0), at(0.5)),
					vtx("sha256:v2", "[2/3] RUN a", at(1), nil),
					vtx("sha256:v3", "[3/3] RUN b", at(1), nil),
				}},
				{Vertexes: []*controlapi.Vertex{{Digest: "sha256:v2", Name: "[2/3] RUN a", Started: at(1), Completed: at(1), Cached: true}}},
				{Vertexes: []*controlapi.Vertex{vtx("sha256:v3", "[3/3] RUN b", at(1), at(4))}},
			},
			extra:   []string{`{"id":"moby.image.id","aux":{"ID":"sha256:feed"}}`},
			wantLog: "#1 [1/3] FROM base\n#1 DONE 0.5s\n\n#2 [2/3] RUN a\n#2 CACHED\n\n#3 [3/3] RUN b\n#3 DONE 3.0s\n",
		},
		{
			name: "parallel steps, one fails, one is cancelled",
			msgs: []*controlapi.StatusResponse{
				{Vertexes: []*controlapi.Vertex{vtx("sha256:a1", "[a 1/2] RUN build-a", at(1), nil), vtx("sha256:b1", "[b 1/2] RUN build-b", at(1), nil)}},
				{Logs: []*controlapi.VertexLog{vlog("sha256:a1", 1.5, "a-out\n"), vlog("sha256:b1", 1.5, "b-out\n"), vlog("sha256:a1", 2, "boom")}},
				{Vertexes: []*controlapi.Vertex{failed, canceled}},
			},
			extra: []string{`{"errorDetail":{"message":"failed to solve with frontend dockerfile.v0: failed to build LLB: executor failed running [/bin/sh -c build-a]: exit code: 3"}}`},
			wantLog: "#1 [a 1/2] RUN build-a\n" +
				"#1 0.500 a-out\n" +
				"\n#2 [b 1/2] RUN build-b\n" +
				"#2 0.500 b-out\n" +
				"\n#1 [a 1/2] RUN build-a\n" +
				"#1 1.000 boom\n" +
				"#1 ERROR: executor failed running [/bin/sh -c build-a]: exit code: 3\n" +
				"\n#2 [b 1/2] RUN build-b\n" +
				"#2 CANCELED\n",
			wantErr: []string{
				"build failed: failed to solve with frontend dockerfile.v0: failed to build LLB: executor failed running [/bin/sh -c build-a]: exit code: 3\n" +
					"failing step: [a 1/2] RUN build-a\n" +
					"--- last 2 lines of the step's output ---\n" +
					"a-out\nboom",
			},
			wantStep: "[a 1/2] RUN build-a",
			wantTail: []string{"a-out", "boom"},
			wantCode: 3,
		},
		{
			name: "a failed cache import is not the failing step, unnamed steps are hidden",
			msgs: []*controlapi.StatusResponse{
				{Vertexes: []*controlapi.Vertex{
					vtx("sha256:u", "", at(0), at(0.05)),
					{Digest: "sha256:imp", Name: "importing cache manifest from r:buildcache", Started: at(0), Completed: at(0.1), Error: "r:buildcache: not found"},
				}},
				{
					Vertexes: []*controlapi.Vertex{{Digest: "sha256:run", Name: "[2/2] RUN x", Started: at(1), Completed: at(2), Error: "executor failed running [/bin/sh -c x]: exit code: 1"}},
					Logs:     []*controlapi.VertexLog{vlog("sha256:run", 1.5, "out\n")},
				},
			},
			extra: []string{`{"errorDetail":{"message":"failed to solve with frontend dockerfile.v0: failed to build LLB: executor failed running [/bin/sh -c x]: exit code: 1"}}`},
			wantLog: "#1 importing cache manifest from r:buildcache\n#1 no cache image yet (first build with this cache); building without it\n" +
				"\n#2 [2/2] RUN x\n#2 0.500 out\n#2 ERROR: executor failed running [/bin/sh -c x]: exit code: 1\n",
			wantErr:  []string{"failing step: [2/2] RUN x\n--- last 1 lines of the step's output ---\nout"},
			wantStep: "[2/2] RUN x",
			wantTail: []string{"out"},
			wantCode: 1,
		},
		{
			name: "an error outside any step keeps the stream's tail",
			msgs: []*controlapi.StatusResponse{
				{Vertexes: []*controlapi.Vertex{vtx("sha256:v1", "[internal] load build definition from Dockerfile", at(0), at(0.1))}},
			},
			extra:    []string{`{"errorDetail":{"message":"failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 1: unknown instruction: FORM"}}`},
			wantLog:  "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.1s\n",
			wantErr:  []string{"unknown instruction: FORM", "--- last 2 lines of build output ---\n#1 [internal] load build definition from Dockerfile\n#1 DONE 0.1s"},
			wantTail: []string{"#1 [internal] load build definition from Dockerfile", "#1 DONE 0.1s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var lines []string
			for _, m := range tc.msgs {
				lines = append(lines, traceMsg(t, m))
			}
			lines = append(lines, tc.extra...)
			var log strings.Builder
			b := NewBuilder(nil, &log)
			id, err := b.readBuildStream(strings.NewReader(strings.Join(lines, "\n")), "x:y")
			if got := log.String(); got != tc.wantLog {
				t.Errorf("log =\n%s\nwant\n%s\n(%q)", got, tc.wantLog, got)
			}
			if tc.wantErr == nil {
				if err != nil || id != "sha256:feed" {
					t.Fatalf("readBuildStream = %q, %v", id, err)
				}
				return
			}
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *StreamError", err, err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if se.Step != tc.wantStep || fmt.Sprintf("%q", se.Tail) != fmt.Sprintf("%q", tc.wantTail) || se.Code != tc.wantCode {
				t.Errorf("step %q, tail %q, code %d; want %q, %q, %d", se.Step, se.Tail, se.Code, tc.wantStep, tc.wantTail, tc.wantCode)
			}
		})
	}
}

func TestTracePrinterUndecodable(t *testing.T) {
	t.Parallel()
	var log strings.Builder
	stream := `{"id":"moby.buildkit.trace","aux":"not base64!"}` + "\n" +
		`{"id":"moby.buildkit.trace","aux":"AAAA"}` + "\n" +
		`{"id":"moby.image.id","aux":{"ID":"sha256:feed"}}`
	id, err := NewBuilder(nil, &log).readBuildStream(strings.NewReader(stream), "x:y")
	if err != nil || id != "sha256:feed" {
		t.Fatalf("readBuildStream = %q, %v; progress problems must not fail a build", id, err)
	}
	if n := strings.Count(log.String(), "(undecodable BuildKit progress message: "); n != 2 {
		t.Errorf("log notes %d undecodable messages, want 2:\n%s", n, log.String())
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1.0kB", 1234: "1.2kB", 2_400_000: "2.4MB", 5e9: "5.0GB", 7e12: "7.0TB", 3e15: "3.0PB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
