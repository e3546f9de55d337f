package imagebuild

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
)

// Aux ids of BuildKit messages in the build stream.
const (
	// traceAuxID carries progress: a JSON string holding a protobuf controlapi.StatusResponse.
	traceAuxID = "moby.buildkit.trace"
	// imageIDAuxID carries the built image's ID as {"ID":"sha256:…"}.
	imageIDAuxID = "moby.image.id"
)

// exitCodeRE finds a RUN step's exit code in BuildKit's error, e.g. "executor failed running
// [/bin/sh -c exit 3]: exit code: 3" (BuildKit 0.8) or "process … did not complete
// successfully: exit code: 3".
var exitCodeRE = regexp.MustCompile(`exit code: (\d+)`)

// tracePrinter prints BuildKit's progress as plain text, like `docker build --progress=plain`:
//
//	#5 [2/3] RUN make
//	#5 0.214 compiling…
//	#5 DONE 1.3s
//
// Steps are numbered in the order they are first printed; unnamed internal steps are hidden
// unless they fail or print output. It keeps each step's last output lines, so that a failure
// can show the failing step's output.
type tracePrinter struct {
	w        io.Writer
	vertexes map[string]*traceVertex // by digest
	count    int                     // steps numbered so far
	current  *traceVertex            // the step the last printed line belongs to
	failed   []*traceVertex          // steps that failed (not merely cancelled), in order
}

// traceVertex is the state of one step (a BuildKit vertex).
type traceVertex struct {
	seq       int // order of first sight
	num       int // 0 until first printed
	name      string
	started   time.Time
	cached    bool
	completed bool
	err       string
	statuses  map[string]bool // status ids whose completion was printed
	partial   string          // unterminated output
	partialAt time.Time
	tail      []string // last output lines, without ANSI escapes
}

// handle decodes and prints one trace aux payload. Progress is only for people: a payload that
// cannot be decoded is noted in the log and does not fail the build.
func (p *tracePrinter) handle(aux json.RawMessage) {
	var raw []byte // the JSON string is base64 of the protobuf message
	if err := json.Unmarshal(aux, &raw); err != nil {
		fmt.Fprintf(p.w, "(undecodable BuildKit progress message: %v)\n", err)
		return
	}
	var sr controlapi.StatusResponse
	if err := sr.UnmarshalVT(raw); err != nil {
		fmt.Fprintf(p.w, "(undecodable BuildKit progress message: %v)\n", err)
		return
	}
	p.print(&sr)
}

// stepEvents is what one status update says about one step.
type stepEvents struct {
	v        *traceVertex
	statuses []*controlapi.VertexStatus
	logs     []*controlapi.VertexLog
	warnings []*controlapi.VertexWarning
	end      *controlapi.Vertex // the step's completion, if this update brings it
}

// print prints one status update step by step, steps that end in it first (in the order they
// ended), as BuildKit's own printer does, so that the log switches between steps less often.
// Then, if no step is being followed, the longest-running open step gets its header.
func (p *tracePrinter) print(sr *controlapi.StatusResponse) {
	var steps []*stepEvents
	byDigest := map[string]*stepEvents{}
	step := func(d string) *stepEvents {
		e := byDigest[d]
		if e == nil {
			e = &stepEvents{v: p.vertex(d)}
			byDigest[d] = e
			steps = append(steps, e)
		}
		return e
	}
	for _, pv := range sr.GetVertexes() {
		e := step(pv.GetDigest())
		e.v.update(pv)
		if pv.GetCompleted() != nil && !e.v.completed {
			e.end = pv
		}
	}
	for _, s := range sr.GetStatuses() {
		e := step(s.GetVertex())
		e.statuses = append(e.statuses, s)
	}
	for _, l := range sr.GetLogs() {
		e := step(l.GetVertex())
		e.logs = append(e.logs, l)
	}
	for _, w := range sr.GetWarnings() {
		e := step(w.GetVertex())
		e.warnings = append(e.warnings, w)
	}
	sort.SliceStable(steps, func(i, j int) bool {
		a, b := steps[i].end, steps[j].end
		if (a != nil) != (b != nil) {
			return a != nil
		}
		return a != nil && a.GetCompleted().AsTime().Before(b.GetCompleted().AsTime())
	})
	for _, e := range steps {
		p.printStep(e)
	}
	p.follow()
}

func (p *tracePrinter) printStep(e *stepEvents) {
	for _, s := range e.statuses {
		p.status(e.v, s)
	}
	for _, w := range e.warnings {
		p.line(e.v, "WARN: "+strings.TrimSpace(string(w.GetShort())))
	}
	for _, l := range e.logs {
		var at time.Time
		if l.GetTimestamp() != nil {
			at = l.GetTimestamp().AsTime()
		}
		p.output(e.v, l.GetMsg(), at)
	}
	if e.end != nil {
		p.complete(e.v, e.end)
	}
}

// vertex returns the state of the step with digest d, creating it on first sight.
func (p *tracePrinter) vertex(d string) *traceVertex {
	if p.vertexes == nil {
		p.vertexes = map[string]*traceVertex{}
	}
	v := p.vertexes[d]
	if v == nil {
		v = &traceVertex{seq: len(p.vertexes), statuses: map[string]bool{}}
		p.vertexes[d] = v
	}
	return v
}

// update records what a vertex message says about the step's name, start and cache use.
func (v *traceVertex) update(pv *controlapi.Vertex) {
	if pv.GetName() != "" {
		v.name = pv.GetName()
	}
	if pv.GetStarted() != nil && v.started.IsZero() {
		v.started = pv.GetStarted().AsTime()
	}
	v.cached = v.cached || pv.GetCached()
}

// follow prints the header of the open step that started first when the step printed last has
// ended, so that a long step without output shows in the log while it runs. Other open steps
// get their header when they print something.
func (p *tracePrinter) follow() {
	if p.current != nil && !p.current.completed {
		return
	}
	var next *traceVertex
	for _, v := range p.vertexes {
		if v.started.IsZero() || v.completed || v.name == "" {
			continue
		}
		if next == nil || v.started.Before(next.started) || v.started.Equal(next.started) && v.seq < next.seq {
			next = v
		}
	}
	if next != nil {
		p.header(next)
	}
}

// complete prints how a step ended. Unnamed internal steps are only shown when they fail.
func (p *tracePrinter) complete(v *traceVertex, pv *controlapi.Vertex) {
	v.completed = true
	p.flush(v)
	switch e := pv.GetError(); {
	case e != "" && strings.HasSuffix(e, "context canceled"):
		p.line(v, "CANCELED")
	case e != "" && strings.HasPrefix(v.name, "importing cache manifest from ") && strings.HasSuffix(e, "not found"):
		// The first build of a registry cache: BuildKit goes on without it.
		p.line(v, "no cache image yet (first build with this cache); building without it")
	case e != "":
		v.err = e
		p.line(v, "ERROR: "+e)
		p.failed = append(p.failed, v)
	case v.name == "": // an unnamed internal step: nothing to show
	case v.cached:
		p.line(v, "CACHED")
	case !v.started.IsZero():
		d := pv.GetCompleted().AsTime().Sub(v.started)
		p.line(v, fmt.Sprintf("DONE %.1fs", d.Seconds()))
	default:
		p.line(v, "DONE")
	}
}

// status prints a finished sub-task of a step, e.g. "#2 transferring context: 1.2kB done" or
// a layer download.
func (p *tracePrinter) status(v *traceVertex, s *controlapi.VertexStatus) {
	if s.GetCompleted() == nil || v.statuses[s.GetID()] || v.name == "" {
		return
	}
	v.statuses[s.GetID()] = true
	text := s.GetID()
	switch {
	case s.GetTotal() > 0:
		text += fmt.Sprintf(" %s / %s", humanBytes(s.GetCurrent()), humanBytes(s.GetTotal()))
	case s.GetCurrent() > 0:
		text += " " + humanBytes(s.GetCurrent())
	}
	p.line(v, text+" done")
}

// output prints a step's output (which may end mid-line) line by line, each with the seconds
// since the step started, and keeps the lines for error messages.
func (p *tracePrinter) output(v *traceVertex, msg []byte, at time.Time) {
	text := v.partial + strings.ReplaceAll(string(msg), "\r\n", "\n")
	v.partial = ""
	for {
		i := strings.IndexAny(text, "\n\r")
		if i < 0 {
			v.partial, v.partialAt = text, at
			return
		}
		p.outputLine(v, text[:i], at)
		text = text[i+1:]
	}
}

func (p *tracePrinter) outputLine(v *traceVertex, l string, at time.Time) {
	if !at.IsZero() && !v.started.IsZero() {
		p.line(v, fmt.Sprintf("%.3f %s", at.Sub(v.started).Seconds(), l))
	} else {
		p.line(v, l)
	}
	v.tail = appendTail(v.tail, l)
}

// flush prints a step's unterminated output.
func (p *tracePrinter) flush(v *traceVertex) {
	if v.partial != "" {
		l := v.partial
		v.partial = ""
		p.outputLine(v, l, v.partialAt)
	}
}

// header prints "#N name", numbering the step on first use.
func (p *tracePrinter) header(v *traceVertex) {
	if v.num == 0 {
		p.count++
		v.num = p.count
	}
	if p.current != nil {
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "#%d %s\n", v.num, v.name)
	p.current = v
}

// line prints one line of step v, after its header when another step printed last.
func (p *tracePrinter) line(v *traceVertex, text string) {
	if p.current != v {
		p.header(v)
	}
	fmt.Fprintf(p.w, "#%d %s\n", v.num, text)
}

// finish prints the output lines left unterminated at the end of the stream.
func (p *tracePrinter) finish() {
	open := make([]*traceVertex, 0, len(p.vertexes))
	for _, v := range p.vertexes {
		if v.partial != "" {
			open = append(open, v)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].seq < open[j].seq })
	for _, v := range open {
		p.flush(v)
	}
}

// annotate adds the failing step to a build's StreamError: its name, its last output lines (in
// place of the stream's) and, for a RUN step, its exit code.
func (p *tracePrinter) annotate(se *StreamError) {
	if se.Code == 0 {
		if m := exitCodeRE.FindStringSubmatch(se.Message); m != nil {
			se.Code, _ = strconv.Atoi(m[1])
		}
	}
	v := p.failedStep(se.Message)
	if v == nil {
		return
	}
	se.Step = v.name
	se.Tail = append([]string(nil), v.tail...)
}

// failedStep returns the step that made the build fail with msg: the last failed step whose
// error msg contains (the daemon wraps it), else the last failed step. Steps can fail without
// failing the build: importing a cache image that does not exist yet is one.
func (p *tracePrinter) failedStep(msg string) *traceVertex {
	for i := len(p.failed) - 1; i >= 0; i-- {
		if strings.Contains(msg, p.failed[i].err) {
			return p.failed[i]
		}
	}
	if len(p.failed) == 0 {
		return nil
	}
	return p.failed[len(p.failed)-1]
}

// humanBytes formats a byte count like BuildKit's progress: 512B, 1.2kB, 3.4MB.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.1f%s", f, u)
		}
	}
	return fmt.Sprintf("%.1fPB", f/unit)
}
