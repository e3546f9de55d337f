// Package cli is the command line: the GitHub Action entry point and the
// dagster-cloud-compatible commands for other CI systems.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/action"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
)

// IO is where the commands read their environment and write.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	root := newRoot(stdio)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	report(stdio, err)
	return 1
}

// report prints err once: as an `::error` annotation inside GitHub Actions
// (with file and line when the error is about a file), else on stderr.
func report(stdio IO, err error) {
	if stdio.Getenv("GITHUB_ACTIONS") != "true" {
		fmt.Fprintf(stdio.Stderr, "Error: %s\n", err)
		return
	}
	fields := map[string]string{"title": "dagster-branch-deploy failed"}
	var ae *action.Error
	if errors.As(err, &ae) {
		if ae.Title != "" {
			fields["title"] = ae.Title
		}
		if ae.File != "" {
			file := ae.File
			if ws := stdio.Getenv("GITHUB_WORKSPACE"); ws != "" {
				if rel, err := filepath.Rel(ws, file); err == nil && !strings.HasPrefix(rel, "..") {
					file = rel
				}
			}
			fields["file"] = filepath.ToSlash(file)
			if ae.Line > 0 {
				fields["line"] = fmt.Sprint(ae.Line)
			}
		}
	}
	githubactions.New(githubactions.WithWriter(stdio.Stdout), githubactions.WithGetenv(stdio.Getenv)).
		WithFieldsMap(fields).Errorf("%s", err)
}

func newRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "dagster-branch-deploy",
		Short: "Build Dagster code locations and deploy them to Dagster+ branch deployments",
		Long: `dagster-branch-deploy builds the code locations of dagster_cloud.yaml, pushes
their images and deploys them to a Dagster+ branch deployment (pull requests)
or full deployment (pushes to the default branch).

Run without arguments inside GitHub Actions (GITHUB_ACTIONS=true), it is the
action. Elsewhere, use its commands, which take the flags of dagster-cloud's.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stdio.Getenv("GITHUB_ACTIONS") != "true" {
				_ = cmd.Help()
				return errors.New("no command given: outside GitHub Actions (GITHUB_ACTIONS is not true) run a command, e.g. `branch-deployment create-or-update`")
			}
			return runAction(cmd.Context(), stdio)
		},
	}
	root.SetOut(stdio.Stdout)
	root.SetErr(stdio.Stderr)
	root.AddCommand(
		&cobra.Command{
			Use:   "action",
			Short: "Run the GitHub Action from INPUT_* and GITHUB_* environment variables",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return runAction(cmd.Context(), stdio) },
		},
		newBranchDeploymentCmd(stdio),
		newDeploymentCmd(stdio),
	)
	return root
}

func runAction(ctx context.Context, stdio IO) error {
	a := githubactions.New(githubactions.WithWriter(stdio.Stdout), githubactions.WithGetenv(stdio.Getenv))
	return action.Run(ctx, action.Env{
		Actions:    a,
		Getenv:     stdio.Getenv,
		Log:        stdio.Stdout,
		HTTPClient: &http.Client{Timeout: 90 * time.Second},
	})
}

// envOr is a flag's environment fallback.
func envOr(stdio IO, flagVal, env string) string {
	if flagVal != "" {
		return flagVal
	}
	return stdio.Getenv(env)
}

// Default returns the environment of this process.
func Default() IO {
	return IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// configLocation loads one location of a dagster_cloud.yaml.
func configLocation(path, name string) (config.Location, error) {
	f, err := config.Load(path)
	if err != nil {
		return config.Location{}, err
	}
	if name == "" {
		if len(f.Locations) != 1 {
			return config.Location{}, fmt.Errorf("%s has %d locations: pass --location-name", path, len(f.Locations))
		}
		return f.Locations[0], nil
	}
	locs, err := f.Select([]string{name})
	if err != nil {
		return config.Location{}, err
	}
	return locs[0], nil
}
