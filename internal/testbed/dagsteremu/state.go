package dagsteremu

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Deployment is a snapshot of one emulated deployment.
type Deployment struct {
	Name                  string     `json:"name"`
	ID                    int        `json:"id"`
	Type                  string     `json:"type"` // PRODUCTION or BRANCH
	RepoName              string     `json:"repoName,omitempty"`
	BranchName            string     `json:"branchName,omitempty"`
	BranchURL             string     `json:"branchUrl,omitempty"`
	PullRequestURL        string     `json:"pullRequestUrl,omitempty"`
	PullRequestNumber     string     `json:"pullRequestNumber,omitempty"`
	PullRequestStatus     string     `json:"pullRequestStatus,omitempty"`
	BaseDeploymentName    string     `json:"baseDeploymentName,omitempty"`
	SnapshotBaseCondition string     `json:"snapshotBaseCondition,omitempty"`
	Commit                Commit     `json:"commit"`
	Updates               int        `json:"updates"` // createOrUpdateBranchDeployment calls that touched it
	Locations             []Location `json:"locations"`
}

// Commit is the commit metadata last sent for a branch deployment.
type Commit struct {
	CommitHash      string  `json:"commitHash,omitempty"`
	Timestamp       float64 `json:"timestamp,omitempty"`
	CommitMessage   string  `json:"commitMessage,omitempty"`
	CommitURL       string  `json:"commitUrl,omitempty"`
	AuthorName      string  `json:"authorName,omitempty"`
	AuthorEmail     string  `json:"authorEmail,omitempty"`
	AuthorAvatarURL string  `json:"authorAvatarUrl,omitempty"`
}

// Location is a snapshot of one code location.
type Location struct {
	Name       string         `json:"name"`
	Document   map[string]any `json:"document"`
	LoadStatus string         `json:"loadStatus"` // LOADING or LOADED
	Error      string         `json:"error,omitempty"`
}

type deploymentState struct {
	Deployment // Locations unused; see locations
	locations  []*locationState
}

type locationState struct {
	name    string
	doc     map[string]any
	polls   int
	status  string
	loadErr map[string]any // PythonError value once LOADED with an error
	errText string
	updated time.Time
}

func (d *deploymentState) snapshot() Deployment {
	out := d.Deployment
	out.Locations = make([]Location, len(d.locations))
	for i, l := range d.locations {
		out.Locations[i] = Location{Name: l.name, Document: deepCopyMap(l.doc), LoadStatus: l.status, Error: l.errText}
	}
	return out
}

func (d *deploymentState) location(name string) *locationState {
	for _, l := range d.locations {
		if l.name == name {
			return l
		}
	}
	return nil
}

// Deployments returns a snapshot of every deployment, in creation order.
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Deployment, len(s.deployments))
	for i, d := range s.deployments {
		out[i] = d.snapshot()
	}
	return out
}

// Deployment returns a snapshot of the named deployment.
func (s *Server) Deployment(name string) (Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.deploymentByName(name); d != nil {
		return d.snapshot(), true
	}
	return Deployment{}, false
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Headers = r.Headers.Clone()
		r.Variables = deepCopyMap(r.Variables)
		out[i] = r
	}
	return out
}

// JSON returns an indented dump of the emulator's state for demos: the
// organization, the agent status, every deployment with its locations, and
// a summary of the request log. It never includes tokens or headers.
func (s *Server) JSON() ([]byte, error) {
	type requestSummary struct {
		Operation  string `json:"operation"`
		Deployment string `json:"deployment,omitempty"`
		Path       string `json:"path"`
	}
	s.mu.Lock()
	state := struct {
		Organization string           `json:"organization"`
		AgentRunning bool             `json:"agentRunning"`
		Deployments  []Deployment     `json:"deployments"`
		Requests     []requestSummary `json:"requests"`
	}{Organization: s.organization, AgentRunning: s.agentRunning}
	for _, d := range s.deployments {
		state.Deployments = append(state.Deployments, d.snapshot())
	}
	for _, r := range s.requests {
		state.Requests = append(state.Requests, requestSummary{Operation: r.Operation, Deployment: r.Deployment, Path: r.Path})
	}
	s.mu.Unlock()
	b, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding emulator state: %w", err)
	}
	return b, nil
}

// deploymentByName finds a deployment. s.mu must be held.
func (s *Server) deploymentByName(name string) *deploymentState {
	for _, d := range s.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (s *Server) deploymentByID(id int) (int, *deploymentState) {
	for i, d := range s.deployments {
		if d.ID == id {
			return i, d
		}
	}
	return -1, nil
}

// advance moves the deployment's LOADING locations along by one workspace
// poll. s.mu must be held.
func (s *Server) advance(d *deploymentState) {
	if !s.agentRunning {
		return
	}
	for _, l := range d.locations {
		if l.status != "LOADING" {
			continue
		}
		if l.polls < s.loadPolls {
			l.polls++
			continue
		}
		l.status = "LOADED"
		l.updated = time.Now()
		if msg, ok := s.failures[l.name]; ok {
			l.loadErr, l.errText = scriptedLoadError(l.name, msg)
		}
	}
}

// scriptedLoadError builds the PythonError of a scripted load failure and
// its text as the dagster-cloud CLI formats it.
func scriptedLoadError(name, message string) (map[string]any, string) {
	msg := message
	if len(msg) == 0 || msg[len(msg)-1] != '\n' {
		msg += "\n"
	}
	stack := []string{
		fmt.Sprintf("  File \"/opt/dagster/app/%s/definitions.py\", line 1, in <module>\n", name),
		"    from .assets import *\n",
	}
	causeMsg := fmt.Sprintf("dagster._core.errors.DagsterImportError: Encountered ImportError while importing code location %s\n", name)
	causeStack := []string{"  File \"/usr/local/lib/python3.11/site-packages/dagster/_core/code_pointer.py\", line 138, in load_python_module\n"}
	chain := []any{map[string]any{
		"__typename":     "ErrorChainLink",
		"message":        causeMsg,
		"isExplicitLink": true,
		"error":          pythonErrorValue(causeMsg, causeStack, nil),
	}}
	text := msg + stack[0] + stack[1] +
		"The above exception was caused by the following exception:\n" + causeMsg + causeStack[0]
	return pythonErrorValue(msg, stack, chain), text
}

// upsertLocation adds or replaces a location; it starts LOADING.
func (d *deploymentState) upsertLocation(doc map[string]any) *locationState {
	name := doc["location_name"].(string)
	l := d.location(name)
	if l == nil {
		l = &locationState{name: name}
		d.locations = append(d.locations, l)
	}
	l.doc = deepCopyMap(doc)
	l.polls = 0
	l.status = "LOADING"
	l.loadErr = nil
	l.errText = ""
	l.updated = time.Now()
	return l
}

func sortedDeployments(ds []*deploymentState, keep func(*deploymentState) bool) []*deploymentState {
	var out []*deploymentState
	for _, d := range ds {
		if keep(d) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
