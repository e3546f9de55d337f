package dagster_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
)

func TestDeleteBranchDeployment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	dep, err := h.client.CreateOrUpdateBranchDeployment(ctx, testBranch, testCommit, "")
	if err != nil {
		t.Fatal(err)
	}

	// A full deployment is refused, and nothing is deleted.
	_, err = h.client.DeleteBranchDeployment(ctx, "prod", "prod")
	var nb *dagster.NotBranchDeploymentError
	if !errors.As(err, &nb) || err.Error() != "Deployment prod is not a branch deployment" || nb.Type != "PRODUCTION" {
		t.Errorf("deleting prod: %v", err)
	}
	if n := len(h.requests("CliDeleteDeployment")); n != 0 {
		t.Errorf("deleteDeployment was called %d times for prod", n)
	}

	// An unknown name.
	_, err = h.client.DeleteBranchDeployment(ctx, "nope", "nope")
	var nf *dagster.DeploymentNotFoundError
	if !errors.As(err, &nf) || !strings.HasPrefix(err.Error(), "Unable to find deployment nope") {
		t.Errorf("deleting an unknown deployment: %v", err)
	}

	id, err := h.client.DeleteBranchDeployment(ctx, dep.Name, dep.Name)
	if err != nil || id != dep.ID {
		t.Fatalf("DeleteBranchDeployment = %d, %v; want %d", id, err, dep.ID)
	}
	if _, ok := h.emu.Deployment(dep.Name); ok {
		t.Error("the branch deployment still exists")
	}
	// Both requests go to the deployment's URL, as the dagster-cloud CLI's do.
	for _, op := range []string{"DeploymentByNameQuery", "CliDeleteDeployment"} {
		rs := h.requests(op)
		last := rs[len(rs)-1]
		if last.Path != "/"+dep.Name+"/graphql" {
			t.Errorf("%s was sent to %s", op, last.Path)
		}
	}
	if v := h.requests("CliDeleteDeployment")[0].Variables; v["deploymentId"] != float64(dep.ID) {
		t.Errorf("deleteDeployment variables = %v", v)
	}
}

func TestCreateOrUpdateBranchDeploymentWithOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	for _, cond := range []string{dagster.SnapshotOnCreate, dagster.SnapshotOnUpdate, ""} {
		dep, err := h.client.CreateOrUpdateBranchDeploymentWithOptions(ctx, testBranch, testCommit,
			dagster.BranchOptions{BaseDeploymentName: "prod", SnapshotBaseCondition: cond})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := h.emu.Deployment(dep.Name)
		if d.SnapshotBaseCondition != cond || d.BaseDeploymentName != "prod" {
			t.Errorf("condition %q: deployment = %+v", cond, d)
		}
		rs := h.requests("CliCreateOrUpdateBranchDeployment")
		v := rs[len(rs)-1].Variables
		want := any(cond)
		if cond == "" {
			want = nil
		}
		if got, ok := v["snapshotBaseCondition"]; !ok || got != want {
			t.Errorf("condition %q: snapshotBaseCondition sent as %#v", cond, got)
		}
	}
	if _, err := h.client.CreateOrUpdateBranchDeploymentWithOptions(ctx, testBranch, testCommit,
		dagster.BranchOptions{SnapshotBaseCondition: "on-create"}); err == nil || !strings.Contains(err.Error(), "ON_CREATE") {
		t.Errorf("a CLI-style value was accepted: %v", err)
	}
}
