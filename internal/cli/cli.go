// Package cli is the command line: the GitHub Action entry point and the
// dagster-cloud-compatible commands for other CI systems.
//
// The dagster-cloud-compatible commands (branch-deployment create-or-update
// and delete, deployment add-location, ...) take the flags and environment
// variables of Dagster's `dagster-cloud` CLI, so a script written for it
// runs with `dagster-cloud` replaced by `dagster-branch-deploy`. Their
// streams and exit codes are set in one place, Main:
//
//   - stdout holds only the result: the deployment name of create-or-update
//     (then `NAME=$(...)` captures exactly it), and for add-location the
//     progress lines dagster-cloud prints there;
//   - every error and warning goes to stderr, as "Error: …", or inside
//     GitHub Actions (GITHUB_ACTIONS=true) as an `::error` workflow command,
//     still on stderr, which the runner reads too;
//   - the exit status is 0 on success, 1 on failure and 2 for a command line
//     click would refuse (unknown command or option, missing required
//     option, bad option value), as typer and click do.
//
// The action's own run (no command, or `action`, inside GitHub Actions)
// keeps writing its log and its `::error file=…,line=…` annotation to stdout.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sethvargo/go-githubactions"
	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/action"
)

// IO is where the commands read their environment and write.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Default returns the environment of this process.
func Default() IO {
	return IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // click's UsageError
)

// app is one run of the command line.
type app struct {
	stdio IO
	specs map[*cobra.Command]*spec
}

// Main runs the command line and returns the process exit code. It is the
// only place that decides what an error prints, where, and the exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	a := &app{stdio: stdio, specs: map[*cobra.Command]*spec{}}
	root := a.newRoot()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		a.printUsageError(stdio.Stderr, ue)
		return exitUsage
	}
	var af *actionFailure
	if errors.As(err, &af) {
		return exitFailure // the run printed its failure through its platform
	}
	a.reportCommand(cmd, err)
	return exitFailure
}

// actionFailure is an error of the action's own run.
type actionFailure struct{ err error }

func (e *actionFailure) Error() string { return e.err.Error() }
func (e *actionFailure) Unwrap() error { return e.err }

// reportCommand prints an error of a dagster-cloud-compatible command on
// stderr: "Error: …" as dagster-cloud does, or inside GitHub Actions an
// `::error` workflow command (the runner reads workflow commands on stderr
// too), so that stdout never holds anything but the command's result.
func (a *app) reportCommand(_ *cobra.Command, err error) {
	if a.stdio.Getenv("GITHUB_ACTIONS") != "true" {
		fmt.Fprintf(a.stdio.Stderr, "Error: %s\n", err)
		return
	}
	annotate(a.stdio, a.stdio.Stderr, err)
}

// annotate writes err as an `::error` workflow command to w.
func annotate(stdio IO, w io.Writer, err error) {
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
	githubactions.New(githubactions.WithWriter(w), githubactions.WithGetenv(stdio.Getenv)).
		WithFieldsMap(fields).Errorf("%s", err)
}

func (a *app) newRoot() *cobra.Command {
	stdio := a.stdio
	root := &cobra.Command{
		Use:   "dagster-branch-deploy",
		Short: "Build Dagster code locations and deploy them to Dagster+ branch deployments",
		Long: `dagster-branch-deploy builds the code locations of dagster_cloud.yaml, pushes
their images and deploys them to a Dagster+ branch deployment (pull requests)
or full deployment (pushes to the default branch).

Run without arguments inside GitHub Actions (GITHUB_ACTIONS=true) or GitLab
CI (GITLAB_CI=true), it deploys the run (the same as deploy). Elsewhere, use
its commands, which take the flags of dagster-cloud's.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          a.noSuchCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stdio.Getenv("GITHUB_ACTIONS") != "true" && stdio.Getenv("GITLAB_CI") != "true" {
				return &usageError{cmd: cmd, showHelp: true, msg: "no command given: " + errNoCI.Error()}
			}
			return runAction(cmd.Context(), stdio, runFlags{})
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = versionString()
	root.SetOut(stdio.Stdout)
	root.SetErr(stdio.Stderr)
	root.SetFlagErrorFunc(a.flagError)
	a.register(root, &spec{})
	root.AddCommand(a.newDeployCmds()...)
	root.AddCommand(a.newBranchDeploymentCmd())
	for _, g := range a.newLocationGroups() {
		root.AddCommand(g)
	}
	return root
}

// group returns a command that only holds subcommands: without one it
// prints its help and exits 2, as click's no_args_is_help does.
func (a *app) group(use, short string, hidden bool) *cobra.Command {
	g := &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: hidden,
		Args:   cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{cmd: cmd, showHelp: true}
			}
			return usageErrorf(cmd, "No such command %s.", pyRepr(args[0]))
		},
	}
	a.register(g, &spec{help: short})
	return g
}

// noSuchCommand is the root's argument check: a word that is not a
// command.
func (a *app) noSuchCommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmd, "No such command %s.", pyRepr(args[0]))
	}
	return nil
}

func (a *app) noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmd, "Got unexpected extra argument%s (%s)", plural(len(args)), strings.Join(args, " "))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
