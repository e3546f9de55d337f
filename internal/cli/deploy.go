package cli

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/action"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/github"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/gitlab"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// runFlags are the options of the deploy and close commands.
type runFlags struct {
	dotenv string
	close  bool
}

// newDeployCmds returns `deploy` (what the binary does without arguments
// inside CI), its hidden old name `action`, and `close` (the GitLab
// environment's stop job).
func (a *app) newDeployCmds() []*cobra.Command {
	var f runFlags
	deploy := &cobra.Command{
		Use:   "deploy",
		Short: "Build, push and deploy the code locations of this CI run (GitHub Actions or GitLab CI).",
		Args:  a.noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runAction(cmd.Context(), a.stdio, f) },
	}
	a.register(deploy, &spec{
		help: "Build, push and deploy the code locations of this CI run: GitHub Actions (GITHUB_ACTIONS=true) or GitLab CI (GITLAB_CI=true) is detected from the environment. The action's inputs are read from INPUT_<NAME> variables.",
		opts: []*opt{strOpt(&f.dotenv, "PATH", "GitLab CI: write DAGSTER_DEPLOYMENT, DAGSTER_DEPLOYMENT_URL, DAGSTER_IMAGES and DAGSTER_STATUS to this dotenv file (artifacts: reports: dotenv).", "--dotenv")},
	})
	legacy := &cobra.Command{
		Use:    "action",
		Short:  "Run the GitHub Action (the same as deploy).",
		Hidden: true,
		Args:   a.noArgs,
		RunE:   func(cmd *cobra.Command, _ []string) error { return runAction(cmd.Context(), a.stdio, f) },
	}
	a.register(legacy, &spec{})
	var cf runFlags
	cf.close = true
	closeCmd := &cobra.Command{
		Use:   "close",
		Short: "GitLab CI stop job: mark the merge request's branch deployment MERGED or CLOSED.",
		Args:  a.noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runAction(cmd.Context(), a.stdio, cf) },
	}
	a.register(closeCmd, &spec{
		help: "Run in the stop job of the merge request's environment (GitLab runs it when the merge request is merged or closed): asks the GitLab API for the merge request's state and marks its branch deployment MERGED or CLOSED. Nothing is built.",
		opts: []*opt{strOpt(&cf.dotenv, "PATH", "Write the DAGSTER_* results to this dotenv file.", "--dotenv")},
	})
	return []*cobra.Command{deploy, legacy, closeCmd}
}

// runAction runs the pipeline on the detected CI platform.
func runAction(ctx context.Context, stdio IO, f runFlags) error {
	hc := &http.Client{Timeout: 90 * time.Second}
	newPlatform, err := detectPlatform(stdio, hc, f)
	if err != nil {
		return err
	}
	if err := action.Run(ctx, action.Env{NewPlatform: newPlatform, Stdout: stdio.Stdout, HTTPClient: hc}); err != nil {
		return &actionFailure{err: err} // the platform has printed it
	}
	return nil
}

// errNoCI is the error outside any supported CI system.
var errNoCI = errors.New("no CI system detected: `deploy` runs inside GitHub Actions (GITHUB_ACTIONS=true) or GitLab CI (GITLAB_CI=true); elsewhere use the `branch-deployment create-or-update` and `deployment add-location` commands")

// detectPlatform returns the CI platform the job runs on, from the
// variables each sets.
func detectPlatform(stdio IO, hc *http.Client, f runFlags) (func(io.Writer) platform.Platform, error) {
	switch {
	case stdio.Getenv("GITHUB_ACTIONS") == "true":
		if f.close {
			return nil, errors.New("`close` is for GitLab's stop job; on GitHub Actions the closed pull request's event closes the branch deployment (on: pull_request: types: [closed])")
		}
		if f.dotenv != "" {
			return nil, errors.New("--dotenv is for GitLab CI; on GitHub Actions the results are the step's outputs")
		}
		return func(log io.Writer) platform.Platform { return github.NewActions(stdio.Getenv, stdio.Stdout, log, hc) }, nil
	case stdio.Getenv("GITLAB_CI") == "true":
		opts := gitlab.Options{Dotenv: f.dotenv, Close: f.close}
		return func(log io.Writer) platform.Platform { return gitlab.NewCI(stdio.Getenv, stdio.Stdout, log, hc, opts) }, nil
	}
	return nil, errNoCI
}
