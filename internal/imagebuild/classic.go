package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// classicOptions maps a Spec to the classic builder's options.
func classicOptions(bc *buildContext, s Spec) build.ImageBuildOptions {
	return build.ImageBuildOptions{
		Version:     build.BuilderV1, // explicit: the daemon's default is not something to rely on
		Dockerfile:  bc.dockerfile,
		Tags:        s.Tags,
		Labels:      s.Labels,
		BuildArgs:   buildArgs(s.BuildArgs),
		Target:      s.Target,
		Platform:    s.Platform,
		CacheFrom:   s.CacheFrom,
		AuthConfigs: s.PullAuth,
		// The zero value sends rm=0, which leaves intermediate containers behind.
		Remove:      true,
		ForceRemove: true,
	}
}

// buildClassic builds with the classic builder; why says why it is used instead of BuildKit.
func (b *Builder) buildClassic(ctx context.Context, bc *buildContext, s Spec, why string) (string, error) {
	if len(s.Secrets) > 0 || len(s.SSH) > 0 {
		return "", fmt.Errorf("building %s: build secrets and SSH forwarding need BuildKit, but this daemon uses the classic builder because %s", s.Tags[0], why)
	}
	if err := b.pullCacheImages(ctx, s); err != nil {
		return "", err
	}
	fmt.Fprintf(b.log, "Building %s from %s (%s) with the classic builder\n", strings.Join(s.Tags, ", "), bc.dir, bc.describeDockerfile())
	for attempt := 1; ; attempt++ {
		id, err := b.buildClassicOnce(ctx, bc, s)
		if err == nil || attempt == classicCacheRaceAttempts || !isClassicCacheRace(err) || ctx.Err() != nil {
			return id, err
		}
		fmt.Fprintf(b.log, "The daemon lost an image while looking for cached steps (an image was removed during the build: %v); building again (attempt %d of %d)\n", err, attempt+1, classicCacheRaceAttempts)
	}
}

// classicCacheRaceAttempts bounds the builds of one Spec when the daemon's cache probe races
// with an image removal (see isClassicCacheRace).
const classicCacheRaceAttempts = 3

// isClassicCacheRace reports whether err is the classic builder's cache probe failing because an
// image it had just listed was removed before it read it (moby's getLocalCachedImage: `unable to
// find image "sha256:…"`). Any image removal on the daemon (another job, `docker image prune`)
// can cause it while a step runs; the build itself is fine, so it is run again.
func isClassicCacheRace(err error) bool {
	var se *StreamError
	if !errors.As(err, &se) {
		return false
	}
	return strings.HasPrefix(se.Message, `unable to find image "sha256:`)
}

// buildClassicOnce sends the context and reads the daemon's stream once.
func (b *Builder) buildClassicOnce(ctx context.Context, bc *buildContext, s Spec) (string, error) {
	tar, err := bc.tar()
	if err != nil {
		return "", err
	}
	defer tar.Close()
	resp, err := b.docker.ImageBuild(ctx, tar, classicOptions(bc, s))
	if err != nil {
		return "", fmt.Errorf("starting the build of %s: %w", s.Tags[0], err)
	}
	defer resp.Body.Close()
	return b.readBuildStream(resp.Body, s.Tags[0])
}

// pullCacheImages pulls the CacheFrom images, since the classic builder only uses local images
// as cache. A cache image that cannot be pulled (not pushed yet, or refused) is skipped with a
// note in the log: the build then runs without it. Only a cancelled context is an error.
func (b *Builder) pullCacheImages(ctx context.Context, s Spec) error {
	for _, ref := range s.CacheFrom {
		err := b.pull(ctx, ref, lookupAuth(s.PullAuth, registryauth.Host(ref)))
		if ctx.Err() != nil {
			return fmt.Errorf("pulling cache image %s: %w", ref, ctx.Err())
		}
		if err != nil {
			fmt.Fprintf(b.log, "Cache image %s not used: %v\n", ref, err)
		}
	}
	return nil
}

// pull pulls ref with auth (empty for anonymous), logging the daemon's progress.
func (b *Builder) pull(ctx context.Context, ref string, auth registry.AuthConfig) error {
	var enc string
	if !registryauth.IsEmpty(auth) {
		var err error
		if enc, err = registry.EncodeAuthConfig(auth); err != nil {
			return fmt.Errorf("encoding credentials: %w", err)
		}
	}
	fmt.Fprintf(b.log, "Pulling cache image %s\n", ref)
	rc, err := b.docker.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: enc})
	if err != nil {
		return errors.New(redact(err.Error(), auth))
	}
	defer rc.Close()
	if err := newStreamDecoder("pull", b.log, nil).decode(rc); err != nil {
		var se *StreamError
		if errors.As(err, &se) {
			se.Message = redact(se.Message, auth)
			se.Tail = nil
		}
		return err
	}
	return nil
}
