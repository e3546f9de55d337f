// Command demo runs the action end to end on this machine: it starts the
// stand-ins (a real docker-registry, the Dagster+ and GitHub emulators),
// runs the built action binary on the example project for an opened pull
// request, and prints the PR comment and what the emulators hold. Run it
// through scripts/demo.sh, which also starts dockerd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

func main() {
	binary := flag.String("binary", "./dagster-branch-deploy", "the built action binary")
	event := flag.String("event", "pull_request.opened.json", "event payload from testdata/events")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *binary, *event)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, binary, event string) error {
	if os.Getenv("DOCKER_HOST") == "" {
		return fmt.Errorf("DOCKER_HOST is not set; run scripts/demo.sh, which starts dockerd")
	}
	binary, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "dagster-branch-deploy-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := scenario.New(ctx, dir, "quickstart")
	if err != nil {
		return err
	}
	defer s.Close()

	section("Stand-ins")
	fmt.Printf("docker-registry (htpasswd): %s\nDagster+ emulator:          %s\nGitHub API emulator:        %s\nworkspace:                  %s (commit %s)\n",
		s.Registry.Addr, s.DagsterURL, s.GitHubURL, s.Workspace, s.HeadSHA[:12])

	eventName := "pull_request"
	if strings.HasPrefix(event, "push") {
		eventName = "push"
	}
	path, err := s.Event(event, nil)
	if err != nil {
		return err
	}
	section("Action run (" + eventName + ", " + event + ")")
	res, err := s.Run(ctx, binary, eventName, path, nil)
	if err != nil {
		return err
	}
	fmt.Print(res.Stdout, res.Stderr)

	section("Step outputs")
	for _, k := range []string{"deployment", "deployment_url", "images", "status"} {
		fmt.Printf("%s=%s\n", k, res.Outputs[k])
	}
	section("PR comment on Codertocat/Hello-World#2")
	for _, c := range s.GitHub.Comments("Codertocat", "Hello-World", 2) {
		fmt.Println(c.Body)
	}
	section("Dagster+ emulator state")
	state, err := s.Dagster.JSON()
	if err != nil {
		return err
	}
	fmt.Println(string(state))
	section("Registry tags of acme/quickstart")
	tags, err := s.Registry.Tags(ctx, "acme/quickstart")
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(tags, "\n"))
	if res.ExitCode != 0 {
		return fmt.Errorf("the action exited %d", res.ExitCode)
	}
	return nil
}

func section(title string) {
	fmt.Printf("\n==== %s %s\n", title, strings.Repeat("=", max(0, 70-len(title))))
}
