package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

// Docker builds and pushes images; *imagebuild.Builder is the real one.
type Docker interface {
	Build(ctx context.Context, s imagebuild.Spec) (string, error)
	Login(ctx context.Context, auth registry.AuthConfig, from string) error
	Push(ctx context.Context, ref string, auth registry.AuthConfig) (string, error)
}

func realDocker(ctx context.Context, log io.Writer) (Docker, error) {
	c, err := imagebuild.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	return imagebuild.NewBuilder(c, log), nil
}

// imageTag is the tag of a location's image: the input image_tag, else
// <head sha, 12>-<run id>-<run attempt>; with -<location> appended when
// several locations push to one registry, so that they do not overwrite
// each other.
func (p *pipeline) imageTag(loc config.Location, shared bool) string {
	tag := p.in.ImageTag
	if tag == "" {
		tag = p.ci.Commit.Short(12)
		if p.ci.RunID != "" {
			tag += "-" + p.ci.RunID + "-" + p.ci.RunAttempt
		}
	}
	suffix := ""
	if shared {
		suffix = "-" + sanitizeTag(loc.Name)
	}
	return truncateTag(tag, suffix)
}

// truncateTag keeps a tag within Docker's 128 characters, cutting the base
// so that the suffix that tells locations apart survives.
func truncateTag(base, suffix string) string {
	if over := len(base) + len(suffix) - 128; over > 0 {
		base = base[:max(0, len(base)-over)]
	}
	return base + suffix
}

// repository normalises a build.registry for comparison: "acme/app" and
// "docker.io/acme/app" are one repository.
func repository(registry string) string {
	if named, err := reference.ParseNormalizedNamed(registry); err == nil {
		return named.Name()
	}
	return registry
}

func sanitizeTag(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, s)
}

// buildAll builds and pushes every location that needs it and returns the
// image reference of each location. If any location fails, it returns an
// error naming all that failed, and nothing should be deployed.
func (p *pipeline) buildAll(ctx context.Context, locs []config.Location) (map[string]string, error) {
	locs, err := p.placeServerless(locs)
	if err != nil {
		return nil, err
	}
	for _, l := range locs {
		if err := p.cfg.CheckBuildable(l); err != nil {
			return nil, err
		}
	}
	images := map[string]string{}
	perRegistry := map[string]int{}
	for _, l := range locs {
		if l.NeedsBuild {
			perRegistry[repository(l.Build.Registry)]++
		}
	}
	shared := func(l config.Location) bool { return perRegistry[repository(l.Build.Registry)] > 1 }
	var toBuild []config.Location
	for _, l := range locs {
		if !l.NeedsBuild {
			images[l.Name] = l.Image
			p.rep.Locations = append(p.rep.Locations, report.Location{Name: l.Name, State: report.Pushed, Image: l.Image, Updated: p.now()})
			p.logf("Location %s uses the prebuilt image %s (it has no build section).", l.Name, l.Image)
			continue
		}
		ref := l.Build.Registry + ":" + p.imageTag(l, shared(l))
		if r, ok := p.serverlessRef(l); ok {
			ref = r
		}
		images[l.Name] = ref
		p.rep.Locations = append(p.rep.Locations, report.Location{Name: l.Name, State: report.Building, Image: ref, Updated: p.now()})
		toBuild = append(toBuild, l)
	}
	if len(toBuild) == 0 {
		return images, nil
	}
	// Nothing outside the project is ever sent to a builder: every context
	// and Dockerfile is checked before the first build.
	paths := map[string]config.BuildPaths{}
	for _, l := range toBuild {
		bp, err := p.cfg.BuildPaths(l, p.projectDir, p.in.Dockerfile)
		if _, ok := p.serverlessRef(l); ok && err == nil {
			err = p.serverlessDockerfile(l, bp)
		}
		if err != nil {
			p.failAll(toBuild)
			return nil, err
		}
		paths[l.Name] = bp
	}
	if p.comment(ctx); p.superseded != "" {
		return images, nil // a newer run of the pull request owns it: build nothing
	}

	newDocker := p.env.NewDocker
	if newDocker == nil {
		newDocker = realDocker
	}
	docker, err := newDocker(ctx, p.log.Writer())
	if err != nil {
		p.failAll(toBuild)
		return nil, err
	}

	// Resolve and check every registry's credentials before any build, so
	// that a wrong password fails in seconds.
	reg := p.plat.Registry()
	p.resolver = &registryauth.Resolver{
		Username:                    p.in.RegistryUsername,
		Password:                    p.in.RegistryPassword,
		ConfigDir:                   p.plat.ContainerPath(p.plat.Getenv("DOCKER_CONFIG")),
		GitHubToken:                 reg.Token,
		GitHubActor:                 reg.Actor,
		AWSRoleARN:                  p.in.AWSRoleARN,
		GCPCredentialsJSON:          p.in.GCPCredentialsJSON,
		GCPWorkloadIdentityProvider: p.in.GCPWorkloadIdentityProvider,
		GCPServiceAccount:           p.in.GCPServiceAccount,
		IDToken:                     reg.IDToken,
		Getenv:                      p.plat.Getenv,
		HTTPClient:                  p.env.HTTPClient,
	}
	if p.serverless != nil {
		p.resolver.Provide(p.serverless.reg.Host(), p.serverless.reg.Username, p.serverless.reg.Password, "the token Dagster+ hands out for its Serverless registry")
	}
	auths := map[string]registry.AuthConfig{}
	for _, l := range toBuild {
		host := registryauth.Host(l.Build.Registry)
		if _, done := auths[host]; done {
			continue
		}
		creds, err := p.resolver.Resolve(ctx, host)
		if err != nil && !p.in.Push && errors.Is(err, registryauth.ErrNoCredentials) {
			// Building only: credentials matter just for private base images.
			creds, err = registryauth.Credentials{Host: host}, nil
		}
		if err != nil {
			err = fmt.Errorf("credentials for registry %s (location %s): %w", host, l.Name, err)
			p.failAll(toBuild)
			return nil, err
		}
		p.sec.Add(creds.Secrets()...)
		p.sec.AddPair(creds.Auth.Username, creds.Auth.Password)
		if creds.Anonymous() {
			p.logf("No credentials for registry %s: using it anonymously (set registry_username and registry_password, or log in with docker/login-action first).", host)
		} else {
			p.logf("Registry %s: using credentials from %s.", host, creds.Origin)
			if err := docker.Login(ctx, creds.Auth, creds.Origin); err != nil {
				p.failAll(toBuild)
				return nil, err
			}
		}
		auths[host] = creds.Auth
	}

	var failed []string
	var errs []error
	for _, l := range toBuild {
		digest, err := p.buildOne(ctx, docker, l, paths[l.Name], images[l.Name], shared(l), auths)
		if err != nil {
			p.rep.Set(l.Name, report.Failed, p.sec.Redact(err.Error()))
			failed = append(failed, l.Name)
			errs = append(errs, fmt.Errorf("location %s: %w", l.Name, err))
			continue
		}
		p.rep.Location(l.Name).Digest = digest
		if p.in.Push {
			p.rep.Set(l.Name, report.Pushed, "")
		} else {
			p.rep.Set(l.Name, report.Built, "")
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("could not build code location(s) %s, so nothing was deployed (the log group of each location shows its build output):\n%w",
			strings.Join(failed, ", "), errors.Join(errs...))
	}
	return images, nil
}

func (p *pipeline) buildOne(ctx context.Context, docker Docker, l config.Location, paths config.BuildPaths, ref string, shared bool, auths map[string]registry.AuthConfig) (string, error) {
	p.log.Group(p.sec.Redact(fmt.Sprintf("Build %s → %s", l.Name, ref)))
	defer p.log.EndGroup()
	spec := p.spec(l, paths, ref, shared, auths)
	// The builder's errors name the reference and the context already.
	if err := p.log.Verbatim(func() error { _, err := docker.Build(ctx, spec); return err }); err != nil {
		return "", err
	}
	if !p.in.Push {
		return "", nil
	}
	// Fetched again: a short-lived token (ECR, Google) may have expired
	// during a long build; the resolver keeps it while it is fresh.
	host := registryauth.Host(l.Build.Registry)
	auth := auths[host]
	if creds, err := p.resolver.Resolve(ctx, host); err == nil && !creds.Anonymous() {
		p.sec.Add(creds.Secrets()...)
		p.sec.AddPair(creds.Auth.Username, creds.Auth.Password)
		auth = creds.Auth
	}
	var digest string
	var cacheErrs []error
	err := p.log.Verbatim(func() (err error) {
		if digest, err = docker.Push(ctx, ref, auth); err != nil {
			return err
		}
		for _, cache := range spec.Tags[1:] {
			if _, err := docker.Push(ctx, cache, auth); err != nil {
				cacheErrs = append(cacheErrs, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	p.logf("Pushed %s@%s", ref, digest)
	for _, err := range cacheErrs {
		// A cache that cannot be pushed costs the next run time, not this deploy.
		p.log.Warn(p.sec.Redact("Could not push the build cache (the next build will not reuse it): "+err.Error()), "", 0)
	}
	return digest, nil
}

// spec is the build of one location: the action's build inputs with the
// location's build section laid over them.
func (p *pipeline) spec(l config.Location, paths config.BuildPaths, ref string, shared bool, auths map[string]registry.AuthConfig) imagebuild.Spec {
	b := l.Build
	labels := map[string]string{
		"org.opencontainers.image.source":   p.ci.RepoURL,
		"org.opencontainers.image.revision": p.ci.Commit.SHA,
		"branch":                            p.ci.Branch,
		"dev.dagster.location":              l.Name,
	}
	for _, extra := range []map[string]string{p.in.Labels, b.Labels} {
		for k, v := range extra {
			labels[k] = v
		}
	}
	args := map[string]string{}
	for _, m := range []map[string]string{p.in.BuildArgs, b.BuildArgs} {
		for k, v := range m {
			args[k] = v
		}
	}
	secrets := map[string][]byte{}
	for id, v := range p.in.BuildSecrets {
		secrets[id] = []byte(v)
	}
	spec := imagebuild.Spec{
		ContextDir: paths.ContextDir,
		Dockerfile: paths.Dockerfile,
		Tags:       []string{ref},
		Labels:     labels,
		BuildArgs:  args,
		Target:     orDefault(b.Target, p.in.Target),
		Platform:   orDefault(b.Platform, p.in.Platform),
		Secrets:    secrets,
		SSH:        p.containerSSH(p.in.SSH),
		PullAuth:   pullAuth(auths),
	}
	if _, ok := p.serverlessRef(l); ok {
		// Dagster+ Serverless runs linux/amd64 images.
		spec.Platform = serverless.Platform
		if content, ok := p.serverless.generated[l.Name]; ok {
			spec.Dockerfile, spec.DockerfileContent = "", content
		}
	}
	cache := p.in.Cache
	if b.Cache != nil {
		cache = *b.Cache
	}
	if cache {
		// <registry>:buildcache (one per location when several share the
		// registry) is the cache source, and is pushed with inline cache
		// metadata for the next run.
		tag := "buildcache"
		if shared {
			tag += "-" + sanitizeTag(l.Name)
		}
		cacheRef := b.Registry + ":" + truncateTag(tag, "")
		spec.CacheFrom = []string{cacheRef}
		spec.InlineCache = true
		if p.in.Push {
			spec.Tags = append(spec.Tags, cacheRef)
		}
	}
	return spec
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// pullAuth offers the push credentials for FROM images in the same
// registries (a private base image next to the app image).
func pullAuth(auths map[string]registry.AuthConfig) map[string]registry.AuthConfig {
	out := map[string]registry.AuthConfig{}
	for host, a := range auths {
		if !registryauth.IsEmpty(a) {
			out[registryauth.ConfigKey(host)] = a
		}
	}
	return out
}

func (p *pipeline) failAll(locs []config.Location) {
	for _, l := range locs {
		p.rep.Set(l.Name, report.Failed, "")
	}
}

// containerSSH maps the paths of ssh entries ("id=path,path") to where
// the action sees them.
func (p *pipeline) containerSSH(entries []string) []string {
	var out []string
	for _, e := range entries {
		id, paths, ok := strings.Cut(e, "=")
		if !ok {
			out = append(out, e)
			continue
		}
		ps := strings.Split(paths, ",")
		for i := range ps {
			ps[i] = p.plat.ContainerPath(ps[i])
		}
		out = append(out, id+"="+strings.Join(ps, ","))
	}
	return out
}
