package dagster_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

func TestCheckConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, nil)
	if err := h.client.CheckConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs := h.requests("CliOrganizationSettings"); len(reqs) != 1 || reqs[0].Deployment != "" || reqs[0].Path != "/graphql" {
		t.Errorf("requests = %+v", reqs)
	}

	bad := newHarness(t, []dagsteremu.Option{dagsteremu.WithTokens("another-token")})
	err := bad.client.CheckConnection(ctx)
	var he *dagster.HTTPError
	if !errors.As(err, &he) || !he.Unauthorized() || !strings.Contains(err.Error(), "dagster_cloud_api_token") {
		t.Fatalf("err = %v", err)
	}
}
