package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
)

func (a *app) newBranchDeploymentCmd() *cobra.Command {
	g := a.group("branch-deployment", "Manage the branch deployments of a Dagster+ organization.", false)
	g.AddCommand(a.newCreateOrUpdateCmd(), a.newDeleteCmd())
	return g
}

// newCreateOrUpdateCmd is `dagster-cloud branch-deployment
// create-or-update` (commands/branch_deployment/__init__.py).
func (a *app) newCreateOrUpdateCmd() *cobra.Command {
	var (
		c        conn
		url      string
		b        dagster.BranchData
		commit   dagster.Commit
		ts       float64
		base     string
		snapshot string
		readGit  bool
	)
	status := &b.PullRequestStatus
	s := &spec{
		help: `Create the branch deployment of a git branch, or update its commit and pull
request, and print its name on stdout (nothing else, so that
NAME=$(dagster-branch-deploy branch-deployment create-or-update ...) captures
it). A closed pull request is --pull-request-status CLOSED or MERGED.`,
	}
	s.opts = append(c.opts(),
		&opt{names: []string{"--url"}, metavar: "TEXT", hidden: true, value: &stringValue{p: &url},
			help: "Deprecated: the organization's URL, https://<organization>.dagster.cloud."},
		&opt{names: []string{"--git-repo-name", "--repo-name"}, metavar: "TEXT", required: true, value: &stringValue{p: &b.RepoName},
			help: "The git repository's name."},
		&opt{names: []string{"--branch-name"}, metavar: "TEXT", required: true, value: &stringValue{p: &b.BranchName},
			help: "The git branch's name."},
		strOpt(&commit.CommitHash, "TEXT", "The latest commit's hash.", "--commit-hash"),
		floatOpt(&ts, "The latest commit's time, in Unix seconds.", "--timestamp"),
		strOpt(&b.BranchURL, "TEXT", "The branch's web address.", "--branch-url"),
		strOpt(&b.PullRequestURL, "TEXT", "The web address of the branch's code review (pull or merge request).", "--code-review-url", "--pull-request-url"),
		strOpt(status, "TEXT", "The pull request's status: OPEN, CLOSED or MERGED.", "--pull-request-status"),
		strOpt(&b.PullRequestNumber, "TEXT", "The code review's identifier, e.g. the pull request number.", "--code-review-id", "--pull-request-id"),
		strOpt(&commit.CommitMessage, "TEXT", "The latest commit's message.", "--commit-message"),
		strOpt(&commit.AuthorName, "TEXT", "The latest commit's author name.", "--author-name"),
		strOpt(&commit.AuthorEmail, "TEXT", "The latest commit's author email.", "--author-email"),
		strOpt(&commit.AuthorAvatarURL, "TEXT", "The web address of the author's avatar.", "--author-avatar-url"),
		boolOpt(&readGit, "Take the commit hash, time, message and author from the git repository in the current directory (HEAD); they replace the flags' values.", "--read-git-state"),
		strOpt(&base, "TEXT", "The deployment the branch deployment is based on (Dagster+ uses prod).", "--base-deployment-name"),
		choiceOpt(&snapshot, []string{"on-create", "on-update"},
			"When to snapshot the base deployment's definitions to highlight the branch's changes: on-create (when the branch deployment is created) or on-update (at every update). Without it, the branch is compared with the live base deployment.",
			"--snapshot-base-condition"),
	)
	cmd := &cobra.Command{
		Use:   "create-or-update",
		Short: "Create or update the branch deployment of a git branch.",
		Args:  a.noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.checkRequired(cmd); err != nil {
				return err
			}
			c.resolve(a.stdio)
			if url == "" && c.organization == "" {
				return errors.New("Must provide either organization name or URL.")
			}
			if c.apiToken == "" {
				return errNoToken
			}
			if url == "" {
				url = orgURL(a.stdio, c.organization)
			}
			if readGit {
				// As `git log -1 --format=%H%n%ae%n%an%n%cd%n%s --date=unix`:
				// git's values replace the flags', empty ones included.
				gc, err := cicontext.ReadGitLog(".", "HEAD")
				if err != nil {
					return fmt.Errorf("Could not read git state, ensure you are in a valid git repository if passing `--read-git-state`. (%w)", err)
				}
				commit.CommitHash, commit.AuthorEmail, commit.AuthorName = gc.SHA, gc.AuthorEmail, gc.AuthorName
				commit.CommitMessage = gc.Title()
				ts = float64(gc.Timestamp.Unix())
			}
			if commit.CommitHash == "" || ts == 0 {
				return errors.New("Must provide `--commit-hash` and `--timestamp` parameters, or pass `--read-git-state` flag.")
			}
			if st := strings.ToUpper(strings.TrimSpace(*status)); st != "" {
				switch st {
				case cicontext.StatusOpen, cicontext.StatusClosed, cicontext.StatusMerged:
					*status = st
				default:
					return fmt.Errorf("--pull-request-status %s: the status must be OPEN, CLOSED or MERGED", pyRepr(*status))
				}
			}
			commit.Timestamp = ts
			client := newClient(url, c.apiToken, logTo(a.stdio.Stderr))
			dep, err := client.CreateOrUpdateBranchDeploymentWithOptions(cmd.Context(), b, commit, dagster.BranchOptions{
				BaseDeploymentName:    base,
				SnapshotBaseCondition: strings.ToUpper(strings.ReplaceAll(snapshot, "-", "_")),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdio.Stdout, dep.Name)
			return nil
		},
	}
	a.register(cmd, s)
	return cmd
}

// newDeleteCmd is `dagster-cloud branch-deployment delete`: the deployment
// is -d/--deployment (or DAGSTER_CLOUD_DEPLOYMENT); as a convenience it may
// also be given as the argument, as `dg plus branch-deployment delete NAME`
// takes it.
func (a *app) newDeleteCmd() *cobra.Command {
	var c conn
	var url, deployment string
	s := &spec{
		args: "[DEPLOYMENT]",
		help: `Delete a branch deployment by name. A deployment that is not a branch
deployment is refused. Nothing is printed on success.`,
	}
	s.opts = append(c.opts(),
		&opt{names: []string{"--url"}, metavar: "TEXT", hidden: true, value: &stringValue{p: &url},
			help: "Deprecated: the deployment's URL, https://<organization>.dagster.cloud/<deployment> (env " + envURL + ")."},
		strOpt(&deployment, "TEXT", "The branch deployment to delete (env "+envDeployment+").", "--deployment", "-d"),
	)
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a branch deployment by name.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf(cmd, "Got unexpected extra argument (%s)", strings.Join(args[1:], " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if deployment != "" && deployment != args[0] {
					return usageErrorf(cmd, "The deployment is given twice: %s and --deployment %s.", pyRepr(args[0]), pyRepr(deployment))
				}
				deployment = args[0]
			}
			c.resolve(a.stdio)
			url = orEnv(a.stdio, url, envURL)
			deployment = orEnv(a.stdio, deployment, envDeployment)
			if url == "" && c.organization != "" && deployment != "" {
				url = orgURL(a.stdio, c.organization) + "/" + deployment
			}
			switch {
			case c.apiToken == "":
				return errNoToken
			case url == "" && c.organization == "":
				return errNoOrganization
			case deployment == "":
				return errNoDeployment
			}
			base, scope, err := deploymentScope(url, deployment)
			if err != nil {
				return err
			}
			client := newClient(base, c.apiToken, logTo(a.stdio.Stderr))
			_, err = client.DeleteBranchDeployment(cmd.Context(), scope, deployment)
			return err
		},
	}
	a.register(cmd, s)
	return cmd
}
