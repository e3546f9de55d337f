// Command dagster-branch-deploy builds Dagster code locations and deploys
// them to Dagster+ branch deployments; see README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Default())
	stop()
	os.Exit(code)
}
