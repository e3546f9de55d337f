//go:build docker

package testbed

import (
	"context"
	"testing"
	"time"
)

func TestDockerWithDaemon(t *testing.T) {
	host := Docker(t) // fails with the instructions when there is no test daemon
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := PingDocker(ctx, host); err != nil {
		t.Fatal(err)
	}
}
