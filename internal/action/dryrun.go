package action

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
)

// dryRun is the deploy of a dry run (dry_run: true). Everything a deploy
// needs has been resolved and checked by now (the context, the config,
// the Dagster+ token by the connection check, the agent type); it reads
// the branch deployment, resolves every registry's credentials and logs
// them in, asks each registry for the image it would push (read only, so
// an unreachable registry or refused credentials fail here, as the push
// would), builds the images without pushing them, and prints the plan:
// each location's image and the GraphQL operations that would change
// Dagster+. It writes nothing: no push, no deployment, no comment.
func (p *pipeline) dryRun(ctx context.Context, locs []config.Location) error {
	d := &report.DryRun{}
	p.rep.DryRun = d
	pl, err := p.prepare(ctx, locs)
	if err != nil {
		return err
	}
	target := p.in.Deployment
	if p.ci.Mode == cicontext.ModeBranch {
		st, err := p.client.BranchDeploymentState(ctx, p.ci.RepoName, p.ci.Branch)
		if err != nil {
			return fmt.Errorf("reading the branch deployment: %w", err)
		}
		target = st.Name
		detail := fmt.Sprintf("create branch deployment %s for %s branch %s (%s, OPEN; base deployment %s) at commit %s",
			st.Name, p.ci.RepoName, p.ci.Branch, p.ci.RequestRef(), p.in.Deployment, p.ci.Commit.Short(12))
		if st.Exists {
			p.setDeployment(st.Name)
			detail = fmt.Sprintf("update branch deployment %s (now at commit %.12s, %s) to commit %s (%s, OPEN; base deployment %s)",
				st.Name, orDefault(st.CommitHash, "(none)"), orDefault(st.PullRequestStatus, "status unknown"), p.ci.Commit.Short(12), p.ci.RequestRef(), p.in.Deployment)
		}
		d.Operations = append(d.Operations, report.Operation{Name: dagster.OperationCreateOrUpdateBranchDeployment, Detail: detail})
	} else {
		p.setDeployment(target)
	}
	buildErr := p.execute(ctx, pl)

	var images []string
	for _, l := range locs {
		images = append(images, l.Name+" = "+pl.images[l.Name])
	}
	d.Operations = append(d.Operations, report.Operation{Name: dagster.OperationDeployLocations,
		Detail: fmt.Sprintf("deploy %s to %s", strings.Join(images, ", "), target)})
	p.logPlan(pl)
	if p.in.LocationLoadTimeout > 0 {
		p.logf("  Then it would wait up to %s for the locations to load (and up to %s for an agent), reading their status.", p.in.LocationLoadTimeout, p.in.AgentHeartbeatTimeout)
	}
	if buildErr != nil {
		return buildErr
	}
	p.logf("Dry run: nothing was pushed, deployed or commented.")
	return nil
}

// planClose is the close of a dry run: it reads the branch deployment and
// says what closing would do, changing nothing.
func (p *pipeline) planClose(ctx context.Context) error {
	d := &report.DryRun{}
	p.rep.DryRun = d
	if err := p.in.CheckDagster(); err != nil {
		return err
	}
	st, err := p.client.BranchDeploymentState(ctx, p.ci.RepoName, p.ci.Branch)
	if err != nil {
		return fmt.Errorf("reading the branch deployment: %w", err)
	}
	status := p.ci.PullRequestStatus
	switch {
	case p.in.DeleteOnClose && st.Exists:
		p.setDeployment(st.Name)
		d.Operations = append(d.Operations,
			report.Operation{Name: dagster.OperationDeploymentByNameQuery, Detail: fmt.Sprintf("check that %s is a branch deployment", st.Name)},
			report.Operation{Name: dagster.OperationDeleteDeployment, Detail: fmt.Sprintf("delete branch deployment %s (%s was %s; delete_on_close)", st.Name, p.ci.RequestRef(), strings.ToLower(status))})
	case p.in.DeleteOnClose:
		p.logf("%s has no branch deployment in Dagster+: closing would delete nothing.", upperFirst(p.ci.RequestRef()))
	case st.Exists:
		p.setDeployment(st.Name)
		d.Operations = append(d.Operations, report.Operation{Name: dagster.OperationCreateOrUpdateBranchDeployment,
			Detail: fmt.Sprintf("mark branch deployment %s %s (it is %s now)", st.Name, status, orDefault(st.PullRequestStatus, "of unknown status"))})
	default:
		d.Operations = append(d.Operations, report.Operation{Name: dagster.OperationCreateOrUpdateBranchDeployment,
			Detail: fmt.Sprintf("create branch deployment %s for %s branch %s, marked %s (it does not exist yet)", st.Name, p.ci.RepoName, p.ci.Branch, status)})
	}
	p.logPlan(nil)
	p.logf("Dry run: nothing was changed.")
	return nil
}

// logPlan prints the dry run's plan: each location's image, then the
// operations.
func (p *pipeline) logPlan(pl *plan) {
	p.logf("Dry run plan:")
	if pl != nil {
		for _, l := range pl.prebuilt {
			p.logf("  Location %s: image %s (prebuilt)", l.Name, l.Image)
		}
		for _, j := range pl.jobs {
			p.logf("  Location %s: image %s (built, not pushed)", j.loc.Name, j.ref)
		}
	}
	if len(p.rep.DryRun.Operations) == 0 {
		p.logf("  Dagster+: nothing would be sent.")
	}
	for i, op := range p.rep.DryRun.Operations {
		p.logf("  Dagster+ operation %d, %s: %s", i+1, op.Name, op.Detail)
	}
}

// checkRegistries asks each registry the jobs push to for the first image
// it would receive (read only): a registry that cannot be reached, or
// refuses the credentials, fails a dry run as the push would.
func (p *pipeline) checkRegistries(ctx context.Context, jobs []*job, auths map[string]registry.AuthConfig) error {
	seen := map[string]bool{}
	for _, j := range jobs {
		if seen[j.host] {
			continue
		}
		seen[j.host] = true
		if _, _, err := p.registry().RemoteImage(ctx, j.ref, auths[j.host]); err != nil {
			return fmt.Errorf("registry %s (location %s) could not be reached or read: %w", j.host, j.loc.Name, err)
		}
		p.logf("Registry %s answers.", j.host)
	}
	return nil
}
