package dagster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WaitOptions bounds WaitForLoad.
type WaitOptions struct {
	// LocationLoadTimeout bounds the whole wait. Zero means do not wait.
	LocationLoadTimeout time.Duration
	// AgentHeartbeatTimeout bounds the wait for a RUNNING agent. Zero means
	// the agents are not checked.
	AgentHeartbeatTimeout time.Duration
}

// LocationResult is the load outcome of one code location.
type LocationResult struct {
	Name   string
	Loaded bool
	// Error is the formatted PythonError (message, stack and error chain) when
	// the location loaded with an error, else "".
	Error string
}

type pythonError struct {
	Message    string   `json:"message"`
	Stack      []string `json:"stack"`
	ErrorChain []struct {
		IsExplicitLink bool        `json:"isExplicitLink"`
		Error          pythonError `json:"error"`
	} `json:"errorChain"`
}

// formatPythonError renders a PythonError the way the dagster-cloud CLI
// does: the message, the stack, then each link of the error chain.
func formatPythonError(e pythonError) string {
	var parts []string
	add := func(s string) {
		if s = strings.TrimRight(s, "\n"); s != "" {
			parts = append(parts, s)
		}
	}
	add(e.Message)
	add(strings.Join(e.Stack, ""))
	for _, link := range e.ErrorChain {
		if link.IsExplicitLink {
			add("The above exception was caused by the following exception:")
		} else {
			add("The above exception occurred during handling of the following exception:")
		}
		add(link.Error.Message)
		add(strings.Join(link.Error.Stack, ""))
	}
	return strings.Join(parts, "\n")
}

type agentStatus struct {
	Status string `json:"status"`
	Errors []struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	} `json:"errors"`
}

type locationEntry struct {
	Name                string `json:"name"`
	LoadStatus          string `json:"loadStatus"`
	LocationOrLoadError *struct {
		Typename string `json:"__typename"`
		pythonError
	} `json:"locationOrLoadError"`
}

// WaitForLoad waits until every named code location in the deployment has
// been loaded by the agent, following the dagster-cloud CLI's wait_for_load:
// while no agent has been seen RUNNING it polls the agents (failing after
// AgentHeartbeatTimeout), and it polls the workspace every poll interval
// until all the locations report LOADED (failing after
// LocationLoadTimeout). A location that loaded with an error yields a
// *LoadError; the returned results are valid in that case too.
func (c *Client) WaitForLoad(ctx context.Context, deployment string, names []string, o WaitOptions) ([]LocationResult, error) {
	names = dedupe(names)
	results := make([]LocationResult, len(names))
	for i, n := range names {
		results[i] = LocationResult{Name: n}
	}
	if o.LocationLoadTimeout <= 0 || len(names) == 0 {
		return results, nil
	}
	if deployment == "" {
		return results, errors.New("wait for code locations: no deployment given")
	}
	list := strings.Join(names, ", ")
	c.logf("Waiting for the Dagster+ agent to sync changes to %s in deployment %s...", list, deployment)

	start := c.now()
	heartbeatSeen := o.AgentHeartbeatTimeout <= 0
	var agentProblems []string
	for poll := 1; ; poll++ {
		if !heartbeatSeen {
			if elapsed := c.now().Sub(start); elapsed > o.AgentHeartbeatTimeout {
				return results, c.heartbeatError(deployment, o.AgentHeartbeatTimeout, agentProblems)
			}
			agents, err := c.agentStatus(ctx, deployment)
			if err != nil {
				return results, fmt.Errorf("unable to query agent status in deployment %s: %w", deployment, err)
			}
			agentProblems = agentProblems[:0]
			for _, a := range agents {
				if a.Status == "RUNNING" {
					heartbeatSeen = true
				}
				for _, e := range a.Errors {
					if msg := strings.TrimSpace(e.Error.Message); msg != "" {
						agentProblems = append(agentProblems, msg)
					}
				}
			}
		}

		if elapsed := c.now().Sub(start); elapsed > o.LocationLoadTimeout {
			return results, fmt.Errorf("Timed out after %s waiting for code locations %s to load in deployment %s "+
				"(raise location_load_timeout if they need longer; see %s/locations)",
				formatSeconds(o.LocationLoadTimeout), strings.Join(pending(results), ", "), deployment,
				c.DeploymentURL(deployment))
		}

		entries, err := c.locationEntries(ctx, deployment)
		if err != nil {
			return results, fmt.Errorf("unable to query code locations in deployment %s: %w", deployment, err)
		}
		byName := make(map[string]locationEntry, len(entries))
		for _, e := range entries {
			byName[e.Name] = e
		}
		allLoaded := true
		for i := range results {
			e, ok := byName[results[i].Name]
			results[i].Loaded = ok && e.LoadStatus == "LOADED"
			results[i].Error = ""
			if !results[i].Loaded {
				allLoaded = false
				continue
			}
			if l := e.LocationOrLoadError; l != nil && l.Typename == "PythonError" {
				results[i].Error = formatPythonError(l.pythonError)
			}
		}
		if allLoaded {
			for _, r := range results {
				if r.Error != "" {
					return results, &LoadError{Results: results}
				}
			}
			c.logf("Agent synced changes to %s. Changes should now be visible in Dagster+.", list)
			return results, nil
		}

		if err := c.sleep(ctx, c.pollInterval); err != nil {
			return results, fmt.Errorf("waiting for code locations %s to load: %w", list, err)
		}
		if poll%3 == 0 {
			c.logf("Still waiting for agent to sync changes to %s. This can take a few minutes.", list)
		}
	}
}

func (c *Client) heartbeatError(deployment string, timeout time.Duration, problems []string) error {
	var b strings.Builder
	b.WriteString("No Dagster Cloud agent is actively heartbeating. Make sure that you have a Dagster Cloud agent running.")
	fmt.Fprintf(&b, " No agent serving deployment %s reported RUNNING within %s: check that your Hybrid agent is up "+
		"and configured for this deployment (branch deployments need an agent with branch deployments enabled), "+
		"or raise agent_heartbeat_timeout if it is still starting.", deployment, formatSeconds(timeout))
	if len(problems) > 0 {
		b.WriteString(" Agent errors: " + strings.Join(problems, "; "))
	}
	return errors.New(b.String())
}

func (c *Client) agentStatus(ctx context.Context, deployment string) ([]agentStatus, error) {
	var data struct {
		Agents []agentStatus `json:"agents"`
	}
	if err := c.execute(ctx, deployment, opAgentStatus, nil, &data); err != nil {
		return nil, err
	}
	return data.Agents, nil
}

func (c *Client) locationEntries(ctx context.Context, deployment string) ([]locationEntry, error) {
	var data struct {
		Result struct {
			Typename        string          `json:"__typename"`
			LocationEntries []locationEntry `json:"locationEntries"`
			pythonError
		} `json:"workspaceOrError"`
	}
	if err := c.execute(ctx, deployment, opLocationsQuery, nil, &data); err != nil {
		return nil, err
	}
	if data.Result.Typename != "Workspace" {
		msg := data.Result.Message
		if data.Result.Typename == "PythonError" {
			msg = formatPythonError(data.Result.pythonError)
		}
		return nil, &ResultError{Operation: opLocationsQuery, Typename: typenameOrUnknown(data.Result.Typename), Message: msg}
	}
	return data.Result.LocationEntries, nil
}

func pending(results []LocationResult) []string {
	var out []string
	for _, r := range results {
		if !r.Loaded {
			out = append(out, r.Name)
		}
	}
	if len(out) == 0 {
		for _, r := range results {
			out = append(out, r.Name)
		}
	}
	return out
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// formatSeconds renders a duration as whole seconds, e.g. "600s".
func formatSeconds(d time.Duration) string {
	if d < time.Second {
		return d.String()
	}
	return fmt.Sprintf("%ds", int64(d.Round(time.Second)/time.Second))
}
