package dagsteremu

import (
	"encoding/json"
	"fmt"
	"time"
)

// requestContext carries one request's scope; its resolvers run with s.mu
// held.
type requestContext struct {
	s          *Server
	deployment string // "" for organization scope
}

// current returns the deployment the request is scoped to.
func (rc *requestContext) current() (*deploymentState, error) {
	if rc.deployment == "" {
		return nil, fmt.Errorf("this operation needs a deployment: call /<deployment>/graphql " +
			"or send the Dagster-Cloud-Deployment header")
	}
	d := rc.s.deploymentByName(rc.deployment)
	if d == nil {
		return nil, &typedError{typename: "DeploymentNotFoundError",
			message: fmt.Sprintf("Deployment %q not found in organization %q", rc.deployment, rc.s.organization)}
	}
	return d, nil
}

func str(args map[string]any, key string) string {
	s, _ := args[key].(string)
	return s
}

func nullableStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (rc *requestContext) queryRoot() map[string]any {
	s := rc.s
	return map[string]any{
		"__typename": "CloudQuery",
		"agents": resolver(func(map[string]any) (any, error) {
			if _, err := rc.current(); err != nil {
				return nil, err
			}
			status := "NOT_RUNNING"
			if s.agentRunning {
				status = "RUNNING"
			}
			return []any{map[string]any{
				"__typename":        "Agent",
				"id":                "emulator-agent",
				"agentLabel":        "Dagster+ emulator agent",
				"status":            status,
				"lastHeartbeatTime": float64(time.Now().Unix()),
				"errors":            []any{},
				"metadata":          []any{map[string]any{"__typename": "AgentMetadata", "key": "type", "value": "HybridEmulator"}},
			}}, nil
		}),
		"workspaceOrError": resolver(func(map[string]any) (any, error) {
			d, err := rc.current()
			if err != nil {
				return nil, err
			}
			s.advance(d)
			entries := make([]any, len(d.locations))
			for i, l := range d.locations {
				entries[i] = locationEntryValue(l)
			}
			return map[string]any{"__typename": "Workspace", "id": d.Name, "locationEntries": entries}, nil
		}),
		"currentDeployment": resolver(func(map[string]any) (any, error) {
			d, err := rc.current()
			if err != nil {
				return nil, err
			}
			return rc.deploymentValue(d), nil
		}),
		"deploymentByName": resolver(func(args map[string]any) (any, error) {
			name := str(args, "name")
			d := s.deploymentByName(name)
			if d == nil {
				return nil, &typedError{typename: "DeploymentNotFoundError", message: fmt.Sprintf("Deployment %q not found", name)}
			}
			return rc.deploymentValue(d), nil
		}),
		"fullDeployments": resolver(func(map[string]any) (any, error) {
			var out []any
			for _, d := range sortedDeployments(s.deployments, func(d *deploymentState) bool { return d.Type == "PRODUCTION" }) {
				out = append(out, rc.deploymentValue(d))
			}
			return out, nil
		}),
		"getBranchDeploymentName": resolver(func(args map[string]any) (any, error) {
			return s.BranchDeploymentName(str(args, "repoName"), str(args, "branchName")), nil
		}),
		"organizationSettings": map[string]any{
			"__typename": "OrganizationSettings",
			"settings":   map[string]any{},
		},
		"serverless": resolver(func(map[string]any) (any, error) { return rc.serverlessValue() }),
	}
}

func (rc *requestContext) mutationRoot() map[string]any {
	return map[string]any{
		"__typename":                      "CloudMutation",
		"createOrUpdateBranchDeployment":  resolver(rc.createOrUpdateBranchDeployment),
		"deleteDeployment":                resolver(rc.deleteDeployment),
		"deployLocations":                 resolver(rc.deployLocations),
		"addOrUpdateLocationFromDocument": resolver(rc.addOrUpdateLocation),
		"markCliEvent":                    resolver(func(map[string]any) (any, error) { return "ok", nil }),
	}
}

func (rc *requestContext) createOrUpdateBranchDeployment(args map[string]any) (any, error) {
	s := rc.s
	branch, _ := args["branchData"].(map[string]any)
	commit, _ := args["commit"].(map[string]any)
	repo, branchName := str(branch, "repoName"), str(branch, "branchName")
	if repo == "" || branchName == "" {
		return nil, fmt.Errorf("branchData.repoName and branchData.branchName must not be empty")
	}
	base := str(args, "baseDeploymentName")
	if base != "" && s.deploymentByName(base) == nil {
		return nil, &typedError{typename: "DeploymentNotFoundError", message: fmt.Sprintf("Base deployment %q not found", base)}
	}

	name := s.BranchDeploymentName(repo, branchName)
	d := s.deploymentByName(name)
	if d == nil {
		if s.deploymentLimit > 0 {
			n := 0
			for _, e := range s.deployments {
				if e.Type == "BRANCH" {
					n++
				}
			}
			if n >= s.deploymentLimit {
				return nil, &typedError{typename: "DeploymentLimitError",
					message: fmt.Sprintf("Organization %q has reached its limit of %d branch deployments", s.organization, s.deploymentLimit)}
			}
		}
		d = &deploymentState{Deployment: Deployment{
			Name: name, ID: s.nextID, Type: "BRANCH",
			RepoName: repo, BranchName: branchName, BaseDeploymentName: ProductionDeployment,
		}}
		s.nextID++
		s.deployments = append(s.deployments, d)
	}
	if base != "" {
		d.BaseDeploymentName = base
	}
	d.BranchURL = str(branch, "branchUrl")
	d.PullRequestURL = str(branch, "pullRequestUrl")
	d.PullRequestNumber = str(branch, "pullRequestNumber")
	d.PullRequestStatus = str(branch, "pullRequestStatus")
	d.SnapshotBaseCondition = str(args, "snapshotBaseCondition")
	ts, _ := commit["timestamp"].(float64)
	if i, ok := commit["timestamp"].(int64); ok {
		ts = float64(i)
	}
	d.Commit = Commit{
		CommitHash:      str(commit, "commitHash"),
		Timestamp:       ts,
		CommitMessage:   str(commit, "commitMessage"),
		CommitURL:       str(commit, "commitUrl"),
		AuthorName:      str(commit, "authorName"),
		AuthorEmail:     str(commit, "authorEmail"),
		AuthorAvatarURL: str(commit, "authorAvatarUrl"),
	}
	d.Updates++
	return rc.deploymentValue(d), nil
}

func (rc *requestContext) deleteDeployment(args map[string]any) (any, error) {
	s := rc.s
	id := toInt(args["deploymentId"])
	i, d := s.deploymentByID(id)
	if d == nil {
		return nil, &typedError{typename: "DeploymentNotFoundError", message: fmt.Sprintf("Deployment with id %d not found", id)}
	}
	if d.Type == "PRODUCTION" {
		full := 0
		for _, e := range s.deployments {
			if e.Type == "PRODUCTION" {
				full++
			}
		}
		if full <= 1 {
			return nil, &typedError{typename: "DeleteFinalDeploymentError", message: "Cannot delete the final full deployment"}
		}
	}
	v := rc.deploymentValue(d)
	s.deployments = append(s.deployments[:i], s.deployments[i+1:]...)
	return v, nil
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	case json.Number:
		n, _ := x.Int64()
		return int(n)
	}
	return 0
}

func invalidLocation(errs []string) error {
	list := make([]any, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return &typedError{typename: "InvalidLocationError", message: "Invalid location config",
		fields: map[string]any{"errors": list}}
}

func (rc *requestContext) deployLocations(args map[string]any) (any, error) {
	d, err := rc.current()
	if err != nil {
		return nil, err
	}
	docs, errs := locationsFromDocument(args["document"])
	if len(errs) > 0 {
		return nil, invalidLocation(errs)
	}
	entries := make([]any, len(docs))
	for i, doc := range docs {
		entries[i] = workspaceEntryValue(d.upsertLocation(doc))
	}
	return map[string]any{"__typename": "DeployLocationsSuccess", "locations": entries}, nil
}

func (rc *requestContext) addOrUpdateLocation(args map[string]any) (any, error) {
	d, err := rc.current()
	if err != nil {
		return nil, err
	}
	doc := args["document"]
	if errs := validateLocation(doc, "root"); len(errs) > 0 {
		return nil, invalidLocation(errs)
	}
	return workspaceEntryValue(d.upsertLocation(doc.(map[string]any))), nil
}

func (rc *requestContext) deploymentValue(d *deploymentState) map[string]any {
	v := map[string]any{
		"__typename":         "DagsterCloudDeployment",
		"organizationId":     1,
		"organizationName":   rc.s.organization,
		"deploymentId":       d.ID,
		"deploymentName":     d.Name,
		"deploymentType":     d.Type,
		"isBranchDeployment": d.Type == "BRANCH",
		"agentType":          rc.s.agentType(),
		// Full deployments have neither git metadata nor a latest commit:
		// both fields resolve to null.
		"branchDeploymentGitMetadata": nil,
		"latestCommit":                nil,
		"parentDeployment":            nil,
	}
	if d.Type == "BRANCH" {
		v["branchDeploymentGitMetadata"] = map[string]any{
			"__typename":        "BranchDeploymentGitMetadata",
			"branchName":        d.BranchName,
			"repoName":          d.RepoName,
			"branchUrl":         nullableStr(d.BranchURL),
			"pullRequestUrl":    nullableStr(d.PullRequestURL),
			"pullRequestStatus": nullableStr(d.PullRequestStatus),
			"pullRequestNumber": nullableStr(d.PullRequestNumber),
		}
		// latestCommit is the commit last sent with
		// createOrUpdateBranchDeployment; null until one was.
		if d.Commit.CommitHash != "" {
			v["latestCommit"] = map[string]any{
				"__typename":      "DeploymentCommit",
				"timestamp":       d.Commit.Timestamp,
				"commitHash":      d.Commit.CommitHash,
				"commitMessage":   nullableStr(d.Commit.CommitMessage),
				"commitUrl":       nullableStr(d.Commit.CommitURL),
				"authorName":      nullableStr(d.Commit.AuthorName),
				"authorEmail":     nullableStr(d.Commit.AuthorEmail),
				"authorAvatarUrl": nullableStr(d.Commit.AuthorAvatarURL),
			}
		}
		base := d.BaseDeploymentName
		v["parentDeployment"] = resolver(func(map[string]any) (any, error) {
			if p := rc.s.deploymentByName(base); p != nil {
				return rc.deploymentValue(p), nil
			}
			return nil, nil
		})
	}
	return v
}

func workspaceEntryValue(l *locationState) map[string]any {
	meta, _ := json.Marshal(l.doc)
	ts := float64(l.updated.UnixNano()) / 1e9
	return map[string]any{
		"__typename":                     "WorkspaceEntry",
		"locationName":                   l.name,
		"serializedDeploymentMetadata":   string(meta),
		"metadataTimestamp":              ts,
		"dataUpdatedTimestamp":           ts,
		"hasOutdatedData":                false,
		"canEditCodeLocationPermissions": true,
	}
}

func locationEntryValue(l *locationState) map[string]any {
	var loe any
	if l.status == "LOADED" {
		if l.loadErr != nil {
			loe = l.loadErr
		} else {
			loe = map[string]any{
				"__typename":        "RepositoryLocation",
				"id":                l.name,
				"name":              l.name,
				"isReloadSupported": true,
				"environmentPath":   nil,
				"serverId":          nil,
			}
		}
	}
	return map[string]any{
		"__typename":          "WorkspaceLocationEntry",
		"id":                  l.name,
		"name":                l.name,
		"locationOrLoadError": loe,
		"loadStatus":          l.status,
		"updatedTimestamp":    float64(l.updated.UnixNano()) / 1e9,
		"versionKey":          fmt.Sprintf("%s-%d", l.name, l.updated.UnixNano()),
	}
}
