package imagebuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestStreamDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		op       string
		lines    []string
		wantLog  string
		wantAux  []string // "id=payload"
		wantErr  string   // substring of the error; "" for none
		wantCode int
		wantTail []string
	}{
		{
			name: "classic build success",
			op:   "build",
			lines: []string{
				`{"stream":"Step 1/2 : FROM scratch"}`,
				`{"stream":"\n"}`,
				`{"stream":" ---\u003e \n"}`,
				`{"stream":"Step 2/2 : COPY hello.txt /"}`,
				`{"stream":"\n"}`,
				`{"stream":" ---\u003e 3b1c2d\n"}`,
				`{"aux":{"ID":"sha256:3b1c2d"}}`,
				`{"stream":"Successfully built 3b1c2d\n"}`,
				`{"stream":"Successfully tagged 127.0.0.1:5000/team/app:v1\n"}`,
			},
			wantLog: "Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY hello.txt /\n ---> 3b1c2d\n" +
				"Successfully built 3b1c2d\nSuccessfully tagged 127.0.0.1:5000/team/app:v1\n",
			wantAux: []string{`={"ID":"sha256:3b1c2d"}`},
		},
		{
			name: "error detail with code and tail",
			op:   "build",
			lines: []string{
				`{"stream":"Step 2/2 : RUN /bin/busybox sh -c 'echo boom; exit 3'\n"}`,
				`{"stream":" ---\u003e Running in 1234\n"}`,
				`{"stream":"boom\n"}`,
				`{"errorDetail":{"code":3,"message":"The command '/bin/busybox sh -c echo boom; exit 3' returned a non-zero code: 3"},"error":"The command '/bin/busybox sh -c echo boom; exit 3' returned a non-zero code: 3"}`,
				`{"stream":"never reached\n"}`,
			},
			wantLog:  "Step 2/2 : RUN /bin/busybox sh -c 'echo boom; exit 3'\n ---> Running in 1234\nboom\n",
			wantErr:  "build failed: The command '/bin/busybox sh -c echo boom; exit 3' returned a non-zero code: 3",
			wantCode: 3,
			wantTail: []string{"Step 2/2 : RUN /bin/busybox sh -c 'echo boom; exit 3'", " ---> Running in 1234", "boom"},
		},
		{
			name:    "legacy error field only",
			op:      "push",
			lines:   []string{`{"status":"The push refers to repository [127.0.0.1:5000/x]"}`, `{"error":"unauthorized: authentication required"}`},
			wantLog: "The push refers to repository [127.0.0.1:5000/x]\n",
			wantErr: "push failed: unauthorized: authentication required",
			wantTail: []string{
				"The push refers to repository [127.0.0.1:5000/x]",
			},
		},
		{
			name: "push with progress and digest",
			op:   "push",
			lines: []string{
				`{"status":"The push refers to repository [127.0.0.1:5000/team/app]"}`,
				`{"status":"Preparing","progressDetail":{},"id":"a1b2"}`,
				`{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[=====\u003e    ]","id":"a1b2"}`,
				`{"status":"Pushing","progressDetail":{"current":1024,"total":1024},"progress":"[==========\u003e]","id":"a1b2"}`,
				`{"status":"Pushed","progressDetail":{},"id":"a1b2"}`,
				`{"status":"Pushed","progressDetail":{},"id":"a1b2"}`,
				`{"status":"v1: digest: sha256:abc size: 524"}`,
				`{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:abc","Size":524}}`,
			},
			wantLog: "The push refers to repository [127.0.0.1:5000/team/app]\na1b2: Preparing\na1b2: Pushed\nv1: digest: sha256:abc size: 524\n",
			wantAux: []string{`={"Tag":"v1","Digest":"sha256:abc","Size":524}`},
		},
		{
			name: "buildkit aux ids are passed through",
			op:   "build",
			lines: []string{
				`{"id":"moby.buildkit.trace","aux":"CgsKBXZlcnRleA=="}`,
				`{"id":"moby.image.id","aux":{"ID":"sha256:feed"}}`,
			},
			wantAux: []string{`moby.buildkit.trace="CgsKBXZlcnRleA=="`, `moby.image.id={"ID":"sha256:feed"}`},
		},
		{
			name:    "carriage returns split lines and unterminated output is kept",
			op:      "build",
			lines:   []string{`{"stream":"10%\r50%\r100%\r\nlast words"}`, `{"errorDetail":{"message":"boom"}}`},
			wantLog: "10%\r50%\r100%\r\nlast words",
			wantErr: "build failed: boom",
			wantTail: []string{
				"10%", "50%", "100%", "last words",
			},
		},
		{
			name: "ANSI colours of RUN stderr stay in the log but not in the error",
			op:   "build",
			lines: []string{
				`{"stream":" ---\u003e Running in be0b\n"}`,
				`{"stream":"boom\n"}`,
				`{"stream":"\u001b[91mto-stderr\n\u001b[0m"}`,
				`{"stream":"Removing intermediate container be0b\n"}`,
				`{"errorDetail":{"code":3,"message":"The command '/bin/sh -c false' returned a non-zero code: 3"}}`,
			},
			wantLog:  " ---> Running in be0b\nboom\n\x1b[91mto-stderr\n\x1b[0mRemoving intermediate container be0b\n",
			wantErr:  "returned a non-zero code: 3",
			wantCode: 3,
			wantTail: []string{" ---> Running in be0b", "boom", "to-stderr", "Removing intermediate container be0b"},
		},
		{
			name:    "truncated stream",
			op:      "build",
			lines:   []string{`{"stream":"Step 1/1 : FROM scratch\n"}`, `{"stream":"unterminated`},
			wantLog: "Step 1/1 : FROM scratch\n",
			wantErr: "reading the daemon's build stream: unexpected EOF",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log strings.Builder
			var aux []string
			d := newStreamDecoder(tc.op, &log, func(id string, raw json.RawMessage) error {
				aux = append(aux, id+"="+string(raw))
				return nil
			})
			err := d.decode(strings.NewReader(strings.Join(tc.lines, "\n")))
			if got := log.String(); got != tc.wantLog {
				t.Errorf("log =\n%q\nwant\n%q", got, tc.wantLog)
			}
			if fmt.Sprint(aux) != fmt.Sprint(tc.wantAux) {
				t.Errorf("aux = %q, want %q", aux, tc.wantAux)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("decode error = %v, want one containing %q", err, tc.wantErr)
			}
			var se *StreamError
			if !errors.As(err, &se) {
				if tc.wantTail != nil {
					t.Fatalf("error %T is not a *StreamError", err)
				}
				return
			}
			if se.Code != tc.wantCode {
				t.Errorf("code = %d, want %d", se.Code, tc.wantCode)
			}
			if fmt.Sprintf("%q", se.Tail) != fmt.Sprintf("%q", tc.wantTail) {
				t.Errorf("tail = %q, want %q", se.Tail, tc.wantTail)
			}
			for _, l := range tc.wantTail {
				if !strings.Contains(err.Error(), l) {
					t.Errorf("error text lacks tail line %q:\n%v", l, err)
				}
			}
		})
	}
}

func TestStreamErrorTailIsBounded(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := 1; i <= 50; i++ {
		lines = append(lines, fmt.Sprintf(`{"stream":"line %d\n"}`, i))
	}
	lines = append(lines, `{"errorDetail":{"message":"failed"}}`)
	err := newStreamDecoder("build", nil, nil).decode(strings.NewReader(strings.Join(lines, "")))
	var se *StreamError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StreamError", err)
	}
	if len(se.Tail) != tailLines || se.Tail[0] != "line 31" || se.Tail[tailLines-1] != "line 50" {
		t.Fatalf("tail = %q, want lines 31..50", se.Tail)
	}
	if strings.Contains(err.Error(), "line 30\n") {
		t.Errorf("error text holds more than the tail:\n%v", err)
	}
}

func TestStreamErrorCodeNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    StreamError
		want string
	}{
		{StreamError{Op: "build", Message: "returned a non-zero code: 3", Code: 3}, "build failed: returned a non-zero code: 3"},
		{StreamError{Op: "build", Message: "killed", Code: 137}, "build failed: killed (code 137)"},
		{StreamError{Op: "push", Message: "unauthorized"}, "push failed: unauthorized"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
