// Package report renders what a run did: the PR comment, the job summary and
// the step outputs, and keeps exactly one comment per pull request.
package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// State is a location's status in the report.
type State string

// Location states, in the order a location goes through them.
const (
	Building State = "building" // being built and pushed
	Built    State = "built"    // built only (input push: false)
	Pushed   State = "pushed"   // built and pushed, not deployed (yet)
	Deployed State = "deployed" // sent to Dagster+, not (yet) seen loaded
	Loaded   State = "loaded"   // the agent loaded it
	Failed   State = "failed"
	Closed   State = "closed"  // the branch deployment was closed or merged
	Deleted  State = "deleted" // the branch deployment was deleted (delete_on_close)
)

var icons = map[State]string{Building: "⏳", Built: "🏗️", Pushed: "📦", Deployed: "🚀", Loaded: "✅", Failed: "❌", Closed: "🔒", Deleted: "🗑️"}

// Location is one row of the report.
type Location struct {
	Name    string
	State   State
	Image   string // reference with tag
	Digest  string // sha256:… once pushed
	Updated time.Time
	Error   string // why it failed, if it did
	// ReusedFrom is the commit of an earlier run whose image, built from
	// the same inputs, was reused instead of building; "" when built.
	ReusedFrom string
}

// ImageRef is the pushed reference pinned by digest when known.
func (l Location) ImageRef() string {
	if l.Digest == "" {
		return l.Image
	}
	return l.Image + "@" + l.Digest
}

// Report is the state of a run, rendered as the PR comment and summary.
type Report struct {
	Deployment    string // Dagster+ deployment name, "" until known
	DeploymentURL string // https://org.dagster.cloud/<deployment>
	Branch        bool   // a branch deployment (else a full one)
	// PullRequestStatus is CLOSED or MERGED when the run only closed the
	// branch deployment.
	PullRequestStatus string
	CommitSHA         string
	CommitURL         string
	RunURL            string
	Locations         []Location
	// Failure is the run's failure, shown above the table.
	Failure string
	// Request is what the platform calls a pull request; "" means
	// "pull request".
	Request string
	// MaxBytes bounds Comment and Summary; 0 means DefaultMaxBytes
	// (GitHub's comment limit).
	MaxBytes int
	// Superseded says why the run changed nothing: a newer run of the same
	// pull request already wrote the branch deployment.
	Superseded string
	// Skipped says why the run did nothing (a fork's pull request, a
	// draft, a merge queue with merge_group: skip).
	Skipped string
	// Deleted says the closed request's branch deployment was deleted
	// (delete_on_close); with no Deployment, there was none to delete.
	Deleted bool
	// DryRun is what a dry run would have sent Dagster+; nil for a run
	// that is not one.
	DryRun *DryRun
	// Now is the clock that stamps the rows' Updated times; nil means
	// time.Now.
	Now func() time.Time
}

// Timestamp is the time now by r.Now, in UTC: what Set stamps a row with.
// Callers that append rows to Locations themselves should stamp them with it.
func (r *Report) Timestamp() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// DryRun is what a dry run would have done: nothing was pushed, deployed
// or commented.
type DryRun struct {
	// Operations are the Dagster+ GraphQL operations the run would send
	// that change something, in order.
	Operations []Operation
}

// Operation is one GraphQL operation of a dry run's plan.
type Operation struct {
	Name   string // the operation's name, e.g. CliDeployLocations
	Detail string // what it would do, shown as data
}

// Status is the `status` output: building, success, failed, closed, merged,
// built (push: false), superseded (a newer run owns the deployment),
// skipped (the event policy passed the run), deleted (delete_on_close) or
// dry-run.
func (r *Report) Status() string {
	switch {
	case r.Failure != "":
		return "failed"
	case r.Superseded != "":
		return "superseded"
	case r.Skipped != "":
		return "skipped"
	case r.Deleted:
		return "deleted"
	case r.DryRun != nil && !slices.ContainsFunc(r.Locations, func(l Location) bool { return l.State == Failed }):
		return "dry-run"
	case r.PullRequestStatus != "":
		return strings.ToLower(r.PullRequestStatus)
	}
	count := map[State]int{}
	for _, l := range r.Locations {
		count[l.State]++
	}
	switch {
	case count[Failed] > 0:
		return "failed"
	case count[Building] > 0:
		return "building"
	case count[Built] > 0 && count[Built]+count[Pushed] == len(r.Locations):
		return "built"
	case count[Pushed] > 0:
		return "building"
	}
	return "success"
}

// LocationsURL is the deployment's code-locations page.
func (r *Report) LocationsURL() string {
	if r.DeploymentURL == "" {
		return ""
	}
	return r.DeploymentURL + "/locations"
}

// Set updates (or adds) the named location's row, stamped with Timestamp.
func (r *Report) Set(name string, state State, errText string) {
	now := r.Timestamp()
	for i := range r.Locations {
		if r.Locations[i].Name == name {
			r.Locations[i].State = state
			r.Locations[i].Error = errText
			r.Locations[i].Updated = now
			return
		}
	}
	r.Locations = append(r.Locations, Location{Name: name, State: state, Error: errText, Updated: now})
}

// SetAll moves every location to state.
func (r *Report) SetAll(state State) {
	for _, l := range r.Locations {
		r.Set(l.Name, state, l.Error)
	}
}

// Location returns the named row.
func (r *Report) Location(name string) *Location {
	for i := range r.Locations {
		if r.Locations[i].Name == name {
			return &r.Locations[i]
		}
	}
	return nil
}

// ImagesJSON is the `images` output: location → ref@digest.
func (r *Report) ImagesJSON() string {
	m := map[string]string{}
	for _, l := range r.Locations {
		if ref := l.ImageRef(); ref != "" {
			m[l.Name] = ref
		}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

// Comment renders the PR comment, at most MaxBytes long (DefaultMaxBytes when unset) (see Summary for
// what gives way when the report is longer). marker is the hidden HTML
// comment that identifies it on later runs; it ends the comment, and no
// value shown in the comment can contain "<!--" or "-->".
func (r *Report) Comment(marker string) string {
	return r.page("\n<sub>Posted by dagster-branch-deploy; this comment is updated on every run.</sub>\n" + marker + "\n").fit()
}

// Summary renders the job summary, at most MaxBytes long (DefaultMaxBytes when unset). When the report
// is longer, the end of each failed location's error output is kept, the
// same length for all, but no less than minErrBytes; if that is not enough,
// the error output is left out, and if that is not enough either, the table
// loses its last rows. Each step says what it left out.
func (r *Report) Summary() string {
	return r.page("").fit()
}

// Error output kept per failed location: all of it up to defaultErrBytes,
// and no less than minErrBytes when the report has to be shortened.
const (
	defaultErrBytes = 6000
	minErrBytes     = 400
)

// page is a report rendered once, in parts that fit assembles.
type page struct {
	head    string   // headline, commit line and failure
	rows    []string // table rows
	failed  []bool   // whether each row's location failed
	details []detail // one per location with an error, by name
	runLog  string   // "run log", linked to the run when it can be
	suffix  string   // footer and marker of a comment
	max     int      // bytes the rendering may take
}

// detail is a failed location's error output.
type detail struct {
	summary string // the <details><summary>… line
	output  errorOutput
}

// layout is how much of a page is shown.
type layout struct {
	errBytes int  // bytes of each location's error output kept
	details  bool // whether the error output is shown at all
	rows     int  // table rows shown
}

func (r *Report) page(suffix string) *page {
	p := &page{head: r.headline() + "\n\n" + r.intro(), runLog: link("run log", r.RunURL), suffix: suffix, max: r.MaxBytes}
	if p.max <= 0 {
		p.max = DefaultMaxBytes
	}
	for _, l := range r.Locations {
		p.rows = append(p.rows, row(l))
		p.failed = append(p.failed, l.State == Failed)
	}
	failed := make([]Location, 0, len(r.Locations))
	for _, l := range r.Locations {
		if l.Error != "" {
			failed = append(failed, l)
		}
	}
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Name < failed[j].Name })
	for _, l := range failed {
		p.details = append(p.details, detail{
			// <code> also keeps GitHub from turning @names, #numbers and
			// :emoji: of the error's first line into mentions and links.
			summary: "<details><summary><code>" + htmlText(l.Name, maxName) + "</code>: <code>" + htmlText(firstLine(l.Error), maxErrorLine) + "</code></summary>",
			output:  prepareError(l.Error),
		})
	}
	return p
}

// fit renders the page within p.max bytes: as it is if it fits, else with less
// error output, else without it, else with fewer rows (see Summary).
func (p *page) fit() string {
	l := layout{errBytes: defaultErrBytes, details: true, rows: len(p.rows)}
	if s := p.render(l); len(s) <= p.max {
		return s
	}
	// largest finds the largest n in [lo, hi] whose rendering fits, and
	// that rendering; the renderings grow with n.
	largest := func(lo, hi int, set func(n int)) string {
		best := ""
		for lo <= hi {
			mid := lo + (hi-lo)/2
			set(mid)
			if s := p.render(l); len(s) <= p.max {
				best, lo = s, mid+1
			} else {
				hi = mid - 1
			}
		}
		return best
	}
	if len(p.details) > 0 {
		if s := largest(minErrBytes, defaultErrBytes-1, func(n int) { l.errBytes = n }); s != "" {
			return s
		}
		l.details = false
		if s := p.render(l); len(s) <= p.max {
			return s
		}
	}
	if s := largest(0, len(p.rows)-1, func(n int) { l.rows = n }); s != "" {
		return s
	}
	// Only a huge marker gets here: the head is bounded.
	return p.head + "\nThe report is too long to show; see the " + p.runLog + ".\n" + p.suffix
}

const tableHeader = "| Location | Status | Image | Updated |\n| --- | --- | --- | --- |\n"

func (p *page) render(l layout) string {
	var b strings.Builder
	b.WriteString(p.head)
	if len(p.rows) > 0 {
		b.WriteString("\n" + tableHeader)
		for _, row := range p.rows[:l.rows] {
			b.WriteString(row)
		}
		if n := len(p.rows) - l.rows; n > 0 {
			failed := ""
			if f := countTrue(p.failed[l.rows:]); f > 0 {
				failed = fmt.Sprintf(" (%d failed)", f)
			}
			fmt.Fprintf(&b, "\n… and %s%s; see the %s. They are left out to keep this under GitHub's size limit.\n", plural(n, "more location"), failed, p.runLog)
		}
	}
	if len(p.details) > 0 && !l.details {
		fmt.Fprintf(&b, "\nThe error output of %s is left out to keep this under GitHub's size limit; see the %s.\n", plural(len(p.details), "failed location"), p.runLog)
	}
	for _, d := range p.details {
		if !l.details {
			break
		}
		b.WriteString("\n" + d.summary + "\n\n")
		text, lines, bytes := d.output.show(l.errBytes)
		if bytes > 0 {
			fmt.Fprintf(&b, "Showing the last %s: %s (%s) before them were cut. The full output is in the %s.\n\n",
				plural(strings.Count(text, "\n")+1, "line"), plural(lines, "line"), humanSize(bytes), p.runLog)
		}
		b.WriteString(codeBlock(text))
		b.WriteString("</details>\n")
	}
	b.WriteString(p.suffix)
	return b.String()
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func (r *Report) headline() string {
	kind := "deployment"
	if r.Branch {
		kind = "branch deployment"
	}
	name := "(not created yet)"
	if r.Deployment != "" {
		name = link(inlineCode(r.Deployment, maxDeployment), r.LocationsURL())
	}
	switch r.Status() {
	case "skipped":
		name = "skipped"
	case "dry-run":
		name += " (dry run)"
	case "deleted":
		if r.Deployment == "" {
			name = "(none)"
		}
	}
	var icon string
	switch r.Status() {
	case "failed":
		icon = "❌"
	case "building":
		icon = "⏳"
	case "closed", "merged":
		icon = "🔒"
	case "built":
		icon = "🏗️"
	case "superseded", "skipped":
		icon = "⏭️"
	case "deleted":
		icon = "🗑️"
	case "dry-run":
		icon = "🧪"
	default:
		icon = "✅"
	}
	return fmt.Sprintf("### %s Dagster+ %s %s", icon, kind, name)
}

// intro is the commit line and the run's failure.
func (r *Report) intro() string {
	var b strings.Builder
	commit := "*(unknown)*"
	if r.CommitSHA != "" {
		commit = link(inlineCode(shortSHA(r.CommitSHA), 12), r.CommitURL)
	}
	deleted := "the branch deployment was **deleted** and nothing was built"
	if r.Deployment == "" {
		deleted = "it had no branch deployment, so nothing was deleted or built"
	}
	switch {
	case r.Superseded != "":
		what := "the run changed nothing"
		if r.anyPushed() {
			what = "the run deployed nothing (its images were pushed)"
		}
		fmt.Fprintf(&b, "This run's commit %s is out of date, so %s: %s\n", commit, what, inlineCode(firstLine(r.Superseded), maxFailure))
	case r.Skipped != "":
		fmt.Fprintf(&b, "Commit %s: this run did nothing: %s\n", commit, inlineCode(firstLine(r.Skipped), maxFailure))
	case r.Deleted && r.PullRequestStatus == "MERGED":
		fmt.Fprintf(&b, "The %s was merged at commit %s: %s.\n", r.request(), commit, deleted)
	case r.Deleted:
		fmt.Fprintf(&b, "The %s was closed at commit %s: %s.\n", r.request(), commit, deleted)
	case r.PullRequestStatus == "MERGED":
		fmt.Fprintf(&b, "The %s was merged at commit %s: the branch deployment was marked **merged** and nothing was built.\n", r.request(), commit)
	case r.PullRequestStatus == "CLOSED":
		fmt.Fprintf(&b, "The %s was closed at commit %s: the branch deployment was marked **closed** and nothing was built.\n", r.request(), commit)
	default:
		fmt.Fprintf(&b, "Commit %s", commit)
		if r.RunURL != "" {
			b.WriteString(" · " + link("workflow run", r.RunURL))
		}
		b.WriteString("\n")
	}
	if d := r.DryRun; d != nil {
		b.WriteString("\n**Dry run:** nothing was pushed, deployed or commented.")
		if len(r.Locations) > 0 {
			b.WriteString(" The images below were built, not pushed.")
		}
		if len(d.Operations) == 0 {
			b.WriteString(" Nothing would be sent to Dagster+.\n")
		} else {
			b.WriteString(" This run would send Dagster+ these GraphQL operations:\n\n")
			for i, op := range d.Operations {
				fmt.Fprintf(&b, "%d. %s: %s\n", i+1, inlineCode(op.Name, maxName), inlineCode(op.Detail, maxFailure))
			}
		}
	}
	if r.Failure != "" {
		b.WriteString("\n**Deploy failed:** " + inlineCode(firstLine(r.Failure), maxFailure))
		if r.RunURL != "" {
			b.WriteString(" (" + link("see the run log", r.RunURL) + ")")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (r *Report) request() string {
	if r.Request == "merge request" {
		return r.Request
	}
	return "pull request"
}

// row is a location's table row.
func row(l Location) string {
	status := string(l.State)
	if icon, ok := icons[l.State]; ok {
		status = icon + " " + status
	} else {
		status = cellCode(status, 50)
	}
	if l.ReusedFrom != "" {
		status += " (reused from " + cellCode(shortSHA(l.ReusedFrom), 12) + ")"
	}
	image := "–"
	if ref := l.ImageRef(); ref != "" {
		image = cellCode(ref, maxImage)
	}
	updated := "–"
	if !l.Updated.IsZero() {
		updated = l.Updated.UTC().Format("Jan 2, 2006 15:04 MST")
	}
	return "| " + cellCode(l.Name, maxName) + " | " + status + " | " + image + " | " + updated + " |\n"
}

// anyPushed says some location's image was pushed (and not deployed).
func (r *Report) anyPushed() bool {
	return slices.ContainsFunc(r.Locations, func(l Location) bool { return l.State == Pushed })
}
