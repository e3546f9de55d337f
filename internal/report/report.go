// Package report renders what a run did: the PR comment, the job summary and
// the step outputs, and keeps exactly one comment per pull request.
package report

import (
	"encoding/json"
	"fmt"
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
	Closed   State = "closed" // the branch deployment was closed or merged
)

var icons = map[State]string{Building: "⏳", Built: "🏗️", Pushed: "📦", Deployed: "🚀", Loaded: "✅", Failed: "❌", Closed: "🔒"}

// Location is one row of the report.
type Location struct {
	Name    string
	State   State
	Image   string // reference with tag
	Digest  string // sha256:… once pushed
	Updated time.Time
	Error   string // why it failed, if it did
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
}

// Status is the `status` output: building, success, failed, closed, merged
// or built (push: false).
func (r *Report) Status() string {
	switch {
	case r.Failure != "":
		return "failed"
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

// Set updates (or adds) the named location's row.
func (r *Report) Set(name string, state State, errText string) {
	for i := range r.Locations {
		if r.Locations[i].Name == name {
			r.Locations[i].State = state
			r.Locations[i].Error = errText
			r.Locations[i].Updated = time.Now().UTC()
			return
		}
	}
	r.Locations = append(r.Locations, Location{Name: name, State: state, Error: errText, Updated: time.Now().UTC()})
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

// Comment renders the PR comment. marker is a hidden HTML comment that
// identifies it on later runs.
func (r *Report) Comment(marker string) string {
	var b strings.Builder
	b.WriteString(r.headline())
	b.WriteString("\n\n")
	b.WriteString(r.body())
	b.WriteString("\n<sub>Posted by dagster-branch-deploy; this comment is updated on every run.</sub>\n")
	b.WriteString(marker)
	b.WriteString("\n")
	return b.String()
}

// Summary renders the job summary.
func (r *Report) Summary() string {
	return r.headline() + "\n\n" + r.body()
}

func (r *Report) headline() string {
	kind := "deployment"
	if r.Branch {
		kind = "branch deployment"
	}
	name := "(not created yet)"
	if r.Deployment != "" {
		name = "`" + r.Deployment + "`"
		if u := r.LocationsURL(); u != "" {
			name = "[" + name + "](" + u + ")"
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
	default:
		icon = "✅"
	}
	return fmt.Sprintf("### %s Dagster+ %s %s", icon, kind, name)
}

func (r *Report) body() string {
	var b strings.Builder
	commit := "`" + short(r.CommitSHA) + "`"
	if r.CommitURL != "" {
		commit = "[" + commit + "](" + r.CommitURL + ")"
	}
	switch r.PullRequestStatus {
	case "MERGED":
		fmt.Fprintf(&b, "The pull request was merged at commit %s: the branch deployment was marked **merged** and nothing was built.\n", commit)
	case "CLOSED":
		fmt.Fprintf(&b, "The pull request was closed at commit %s: the branch deployment was marked **closed** and nothing was built.\n", commit)
	default:
		fmt.Fprintf(&b, "Commit %s", commit)
		if r.RunURL != "" {
			fmt.Fprintf(&b, " · [workflow run](%s)", r.RunURL)
		}
		b.WriteString("\n")
	}
	if r.Failure != "" {
		b.WriteString("\n**Deploy failed:** ")
		b.WriteString(oneLine(r.Failure, 600))
		if r.RunURL != "" {
			fmt.Fprintf(&b, " ([see the run log](%s))", r.RunURL)
		}
		b.WriteString("\n")
	}
	if len(r.Locations) > 0 {
		b.WriteString("\n| Location | Status | Image | Updated |\n| --- | --- | --- | --- |\n")
		for _, l := range r.Locations {
			image := "–"
			if ref := l.ImageRef(); ref != "" {
				image = "`" + ref + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s %s | %s | %s |\n", l.Name, icons[l.State], l.State, image, l.Updated.UTC().Format("Jan 2, 2006 15:04 MST"))
		}
	}
	var details []string
	for _, l := range r.Locations {
		if l.Error != "" {
			details = append(details, fmt.Sprintf("<details><summary><code>%s</code>: %s</summary>\n\n```text\n%s\n```\n</details>\n", l.Name, escapeHTML(firstLine(l.Error, 200)), fence(l.Error)))
		}
	}
	sort.Strings(details)
	if len(details) > 0 {
		b.WriteString("\n")
		b.WriteString(strings.Join(details, "\n"))
	}
	return b.String()
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// firstLine is the first line of s, cut to max bytes, without the colon
// that introduces the lines after it.
func firstLine(s string, max int) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	l = strings.TrimSuffix(strings.TrimSpace(l), ":")
	if len(l) > max {
		l = strings.ToValidUTF8(l[:max], "") + "…"
	}
	return l
}

func oneLine(s string, max int) string {
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(firstLine(s, max))
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// fence keeps an error text from closing its code block and bounds its size.
func fence(s string) string {
	const max = 6000
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = "…\n" + s[len(s)-max:]
	}
	return strings.ReplaceAll(s, "```", "`\u200b``")
}
