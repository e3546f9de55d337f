package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/build"
)

// inlineCacheArg is the build argument that makes BuildKit store cache metadata in the image.
const inlineCacheArg = "BUILDKIT_INLINE_CACHE"

// buildKitOptions maps a Spec to the options of a BuildKit build in session sessionID.
func buildKitOptions(bc *buildContext, s Spec, sessionID string) build.ImageBuildOptions {
	args := buildArgs(s.BuildArgs)
	if s.InlineCache {
		if args == nil {
			args = map[string]*string{}
		}
		if _, set := args[inlineCacheArg]; !set {
			one := "1"
			args[inlineCacheArg] = &one
		}
	}
	// The Dockerfile from the session's "dockerfile" directory, and the context from its
	// "context" (see fileSync).
	dockerfile, remote := bc.dockerfileName(), clientSessionRemote
	return build.ImageBuildOptions{
		Version:       build.BuilderBuildKit,
		SessionID:     sessionID,
		RemoteContext: remote,
		Dockerfile:    dockerfile,
		Tags:          s.Tags,
		Labels:        s.Labels,
		BuildArgs:     args,
		Target:        s.Target,
		Platform:      s.Platform,
		// Registry images with inline cache; BuildKit resolves them through the session's
		// credentials and skips those it cannot find.
		CacheFrom: s.CacheFrom,
		// Meaningless to BuildKit, but the zero value would send rm=0.
		Remove:      true,
		ForceRemove: true,
	}
}

// buildBuildKit builds with BuildKit, as `docker build` does with BuildKit: the request has no
// body, and a session serves the context and the Dockerfile by file sync (see fileSync), and
// registry credentials, secrets and SSH agents, while the build runs. The session serves only
// the files .dockerignore does not exclude (BuildKit applies the same patterns again); files it
// synced from the same context directory in an earlier build (sharedKey) are not sent again
// when their size and time are unchanged.
func (b *Builder) buildBuildKit(ctx context.Context, bc *buildContext, s Spec) (string, error) {
	attachables, err := sessionAttachables(s, b.getenv)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", s.Tags[0], err)
	}
	files, err := bc.fileSync()
	if err != nil {
		return "", fmt.Errorf("building %s: %w", s.Tags[0], err)
	}
	attachables = append(attachables, files)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sess, err := openSession(ctx, sharedKey(bc.dir), hijackDialer(b.docker), cancel, attachables...)
	if err != nil {
		return "", err
	}
	defer func() {
		cancel(nil) // first, in case the session is still dialing
		sess.close()
	}()

	fmt.Fprintf(b.log, "Building %s from %s (%s) with BuildKit\n", strings.Join(s.Tags, ", "), bc.dir, bc.describeDockerfile())
	resp, err := b.docker.ImageBuild(ctx, nil, buildKitOptions(bc, s, sess.id()))
	if err != nil {
		return "", fmt.Errorf("starting the build of %s: %w", s.Tags[0], sessionCause(ctx, err))
	}
	defer resp.Body.Close()
	id, err := b.readBuildStream(resp.Body, s.Tags[0])
	return id, sessionCause(ctx, err)
}

// sessionCause replaces the context error that a failed session caused by the session's error.
func sessionCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, ctx.Err()) {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

// sharedKey names the context directory to the daemon, as docker/cli does; BuildKit uses it to
// reuse files synced in earlier sessions.
func sharedKey(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:])
}
