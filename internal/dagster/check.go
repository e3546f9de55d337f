package dagster

import (
	"context"
	"fmt"
)

// CheckConnection makes one cheap, read-only call at organization scope (the
// query `dagster-cloud ci check` uses), so that a wrong URL or a rejected
// token fails the run before minutes of image builds.
func (c *Client) CheckConnection(ctx context.Context) error {
	var data struct {
		OrganizationSettings *struct {
			Settings any `json:"settings"`
		} `json:"organizationSettings"`
	}
	if err := c.execute(ctx, "", opOrganizationSettings, nil, &data); err != nil {
		return fmt.Errorf("checking the Dagster+ connection: %w", err)
	}
	return nil
}
