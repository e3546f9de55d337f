package imagebuild

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ansiEscape matches terminal escape sequences; the classic builder wraps a RUN step's stderr in
// "\x1b[91m" … "\x1b[0m". The log keeps them (the Actions log renders them), errors do not.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// tailLines is how many lines of daemon output a StreamError keeps.
const tailLines = 20

// message is one JSON object of the daemon's build or push stream: the wire form of
// github.com/docker/docker/pkg/jsonmessage.JSONMessage, declared here to keep that package's
// terminal dependencies out.
type message struct {
	Stream   string          `json:"stream,omitempty"`
	Status   string          `json:"status,omitempty"`
	Progress json.RawMessage `json:"progressDetail,omitempty"`
	ID       string          `json:"id,omitempty"`
	Error    *struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	} `json:"errorDetail,omitempty"`
	ErrorMessage string           `json:"error,omitempty"`
	Aux          *json.RawMessage `json:"aux,omitempty"`
}

// StreamError is a failure the daemon reported inside its JSON stream (the HTTP status is 200 by
// then).
type StreamError struct {
	Op      string // "build", "push" or "pull"
	Message string // the daemon's message, e.g. "The command '/bin/sh -c false' returned a non-zero code: 1"
	Code    int    // a RUN step's exit code, or the daemon's code; often 0
	// Step is the failing build step as BuildKit names it, e.g. "[build 2/3] RUN make"; empty
	// for the classic builder, whose Tail starts at the "Step N/M" line.
	Step string
	// Tail holds the last lines of output before the failure. With Step, they are that step's
	// output (empty if it printed nothing); otherwise the last lines of the whole stream.
	Tail []string
}

func (e *StreamError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %s", e.Op, e.Message)
	if e.Code != 0 && !strings.Contains(e.Message, fmt.Sprint(e.Code)) {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	what := e.Op + " output"
	if e.Step != "" {
		fmt.Fprintf(&b, "\nfailing step: %s", e.Step)
		what = "the step's output"
	}
	if len(e.Tail) > 0 {
		fmt.Fprintf(&b, "\n--- last %d lines of %s ---\n%s", len(e.Tail), what, strings.Join(e.Tail, "\n"))
	}
	return b.String()
}

// streamDecoder reads a daemon JSON stream, copies its text to a log, keeps the last lines for
// error messages and hands aux payloads to a callback.
type streamDecoder struct {
	op  string
	log io.Writer
	// onAux receives every aux payload with the message's id ("" for the classic builder's image
	// ID and the push result, "moby.image.id"/"moby.buildkit.trace" for BuildKit).
	onAux func(id string, aux json.RawMessage) error

	tail    []string
	partial string // text of the current, unterminated output line
	lastSt  map[string]string
}

func newStreamDecoder(op string, log io.Writer, onAux func(id string, aux json.RawMessage) error) *streamDecoder {
	if log == nil {
		log = io.Discard
	}
	return &streamDecoder{op: op, log: log, onAux: onAux, lastSt: map[string]string{}}
}

// decode reads r to EOF. It returns a *StreamError for the first error message in the stream,
// or the read/JSON error that stopped it.
func (d *streamDecoder) decode(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				d.flush()
				return nil
			}
			d.flush()
			return fmt.Errorf("reading the daemon's %s stream: %w", d.op, err)
		}
		if err := d.handle(&m); err != nil {
			return err
		}
	}
}

func (d *streamDecoder) handle(m *message) error {
	if m.Error != nil || m.ErrorMessage != "" {
		d.flush()
		e := &StreamError{Op: d.op, Message: m.ErrorMessage}
		if m.Error != nil {
			e.Code = m.Error.Code
			if m.Error.Message != "" {
				e.Message = m.Error.Message
			}
		}
		e.Message = strings.TrimSpace(e.Message)
		e.Tail = append([]string(nil), d.tail...)
		return e
	}
	if m.Aux != nil && d.onAux != nil {
		if err := d.onAux(m.ID, *m.Aux); err != nil {
			return err
		}
	}
	if m.Stream != "" {
		d.write(m.Stream)
	}
	if m.Status != "" {
		d.status(m)
	}
	return nil
}

// status logs a status line. Progress-bar updates ("Downloading", "Pushing" with
// progressDetail) and repeats of a layer's last status are dropped: the Actions log is not a TTY.
func (d *streamDecoder) status(m *message) {
	if len(m.Progress) > 0 && string(m.Progress) != "{}" && string(m.Progress) != "null" {
		return
	}
	if m.ID != "" {
		if d.lastSt[m.ID] == m.Status {
			return
		}
		d.lastSt[m.ID] = m.Status
		d.write(m.ID + ": " + m.Status + "\n")
		return
	}
	d.write(m.Status + "\n")
}

// write copies text to the log and records complete lines in the tail. Carriage returns (progress
// redraws inside RUN output) end a line too.
func (d *streamDecoder) write(s string) {
	_, _ = io.WriteString(d.log, s)
	s = d.partial + strings.ReplaceAll(s, "\r\n", "\n")
	d.partial = ""
	for {
		i := strings.IndexAny(s, "\n\r")
		if i < 0 {
			d.partial = s
			return
		}
		d.addLine(s[:i])
		s = s[i+1:]
	}
}

// Write logs p as stream text, for the BuildKit progress printer.
func (d *streamDecoder) Write(p []byte) (int, error) {
	d.write(string(p))
	return len(p), nil
}

func (d *streamDecoder) flush() {
	if d.partial != "" {
		d.addLine(d.partial)
		d.partial = ""
	}
}

func (d *streamDecoder) addLine(l string) { d.tail = appendTail(d.tail, l) }

// appendTail adds an output line, without colours, to the last tailLines
// lines kept for an error message.
func appendTail(tail []string, l string) []string {
	l = strings.TrimRight(ansiEscape.ReplaceAllString(l, ""), " \t")
	if l == "" {
		return tail
	}
	tail = append(tail, l)
	if len(tail) > tailLines {
		tail = tail[len(tail)-tailLines:]
	}
	return tail
}
