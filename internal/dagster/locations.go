package dagster

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// locationResult is the shape shared by the location mutations' result
// unions.
type locationResult struct {
	Typename     string   `json:"__typename"`
	LocationName string   `json:"locationName"`
	Message      string   `json:"message"`
	Stack        []string `json:"stack"`
	Errors       []string `json:"errors"`
	Locations    []*struct {
		LocationName string `json:"locationName"`
	} `json:"locations"`
}

func (r locationResult) err(operation string) error {
	msg := r.Message
	if r.Typename == "PythonError" && len(r.Stack) > 0 {
		msg = formatPythonError(pythonError{Message: r.Message, Stack: r.Stack})
	}
	return &ResultError{Operation: operation, Typename: typenameOrUnknown(r.Typename), Message: msg, Errors: r.Errors}
}

// DeployLocations adds or updates the given code locations in a deployment
// in one call and returns the names Dagster+ accepted, sorted. Each document
// is a location document (location_name, code_source, image, git, ...);
// they are sent as {"locations": documents}. Locations not listed are left
// alone.
func (c *Client) DeployLocations(ctx context.Context, deployment string, documents []map[string]any) ([]string, error) {
	if deployment == "" {
		return nil, errors.New("deploy code locations: no deployment given")
	}
	if len(documents) == 0 {
		return nil, fmt.Errorf("deploy code locations to %s: no location documents given", deployment)
	}
	vars := map[string]any{"document": map[string]any{"locations": documents}}
	var data struct {
		Result locationResult `json:"deployLocations"`
	}
	if err := c.execute(ctx, deployment, opDeployLocations, vars, &data); err != nil {
		return nil, fmt.Errorf("deploy code locations to %s: %w", deployment, err)
	}
	if data.Result.Typename != "DeployLocationsSuccess" {
		return nil, fmt.Errorf("deploy code locations to %s: %w", deployment, data.Result.err(opDeployLocations))
	}
	names := make([]string, 0, len(data.Result.Locations))
	for _, l := range data.Result.Locations {
		if l != nil {
			names = append(names, l.LocationName)
		}
	}
	sort.Strings(names)
	return names, nil
}

// AddOrUpdateLocation adds or updates one code location in a deployment from
// its location document and returns the location's name.
func (c *Client) AddOrUpdateLocation(ctx context.Context, deployment string, document map[string]any) (string, error) {
	if deployment == "" {
		return "", errors.New("add or update code location: no deployment given")
	}
	if document == nil {
		return "", fmt.Errorf("add or update code location in %s: no location document given", deployment)
	}
	vars := map[string]any{"document": document}
	var data struct {
		Result locationResult `json:"addOrUpdateLocationFromDocument"`
	}
	if err := c.execute(ctx, deployment, opAddOrUpdateLocation, vars, &data); err != nil {
		return "", fmt.Errorf("add or update code location in %s: %w", deployment, err)
	}
	if data.Result.Typename != "WorkspaceEntry" {
		return "", fmt.Errorf("add or update code location in %s: %w", deployment, data.Result.err(opAddOrUpdateLocation))
	}
	return data.Result.LocationName, nil
}
