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
	pl, err := p.plan(locs)
	if err != nil {
		return nil, err
	}
	for _, l := range pl.prebuilt {
		p.rep.Locations = append(p.rep.Locations, report.Location{Name: l.Name, State: report.Pushed, Image: l.Image, Updated: p.now()})
		p.logf("Location %s uses the prebuilt image %s (it has no build section).", l.Name, l.Image)
	}
	for _, j := range pl.jobs {
		p.rep.Locations = append(p.rep.Locations, report.Location{Name: j.loc.Name, State: report.Building, Image: j.ref, Updated: p.now()})
	}
	if len(pl.jobs) == 0 {
		return pl.images, nil
	}
	if p.comment(ctx); p.superseded != "" {
		return pl.images, nil // a newer run of the pull request owns it: build nothing
	}
	if err := p.execute(ctx, pl); err != nil {
		return nil, err
	}
	return pl.images, nil
}

// execute runs the plan's builds: it connects to the builder, resolves and
// checks every registry's credentials before the first build (so that a
// wrong password fails in seconds), then builds and pushes each job.
func (p *pipeline) execute(ctx context.Context, pl *plan) error {
	newDocker := p.env.NewDocker
	if newDocker == nil {
		newDocker = realDocker
	}
	docker, err := newDocker(ctx, p.log.Writer())
	if err != nil {
		p.failJobs(pl.jobs)
		return err
	}
	auths, err := p.login(ctx, docker, pl.jobs)
	if err != nil {
		p.failJobs(pl.jobs)
		return err
	}
	var failed []string
	var errs []error
	for _, j := range pl.jobs {
		j.spec.PullAuth = pullAuth(auths)
		digest, err := p.buildOne(ctx, docker, j, auths[j.host])
		if err != nil {
			p.rep.Set(j.loc.Name, report.Failed, p.sec.Redact(err.Error()))
			failed = append(failed, j.loc.Name)
			errs = append(errs, fmt.Errorf("location %s: %w", j.loc.Name, err))
			continue
		}
		p.rep.Location(j.loc.Name).Digest = digest
		if p.in.Push {
			p.rep.Set(j.loc.Name, report.Pushed, "")
		} else {
			p.rep.Set(j.loc.Name, report.Built, "")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not build code location(s) %s, so nothing was deployed (the log group of each location shows its build output):\n%w",
			strings.Join(failed, ", "), errors.Join(errs...))
	}
	return nil
}

// login resolves the credentials of every registry the jobs push to and
// logs the builder in, once per host.
func (p *pipeline) login(ctx context.Context, docker Docker, jobs []*job) (map[string]registry.AuthConfig, error) {
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
	for _, j := range jobs {
		if _, done := auths[j.host]; done {
			continue
		}
		creds, err := p.resolver.Resolve(ctx, j.host)
		if err != nil && !p.in.Push && errors.Is(err, registryauth.ErrNoCredentials) {
			// Building only: credentials matter just for private base images.
			creds, err = registryauth.Credentials{Host: j.host}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("credentials for registry %s (location %s): %w", j.host, j.loc.Name, err)
		}
		p.sec.Add(creds.Secrets()...)
		p.sec.AddPair(creds.Auth.Username, creds.Auth.Password)
		if creds.Anonymous() {
			p.logf("No credentials for registry %s: using it anonymously (set registry_username and registry_password, or log in with docker/login-action first).", j.host)
		} else {
			p.logf("Registry %s: using credentials from %s.", j.host, creds.Origin)
			if err := docker.Login(ctx, creds.Auth, creds.Origin); err != nil {
				return nil, err
			}
		}
		auths[j.host] = creds.Auth
	}
	return auths, nil
}

func (p *pipeline) buildOne(ctx context.Context, docker Docker, j *job, auth registry.AuthConfig) (string, error) {
	p.log.Group(p.sec.Redact(fmt.Sprintf("Build %s → %s", j.loc.Name, j.ref)))
	defer p.log.EndGroup()
	// The builder's errors name the reference and the context already.
	if err := p.log.Verbatim(func() error { _, err := docker.Build(ctx, j.spec); return err }); err != nil {
		return "", err
	}
	if !p.in.Push {
		return "", nil
	}
	// Fetched again: a short-lived token (ECR, Google) may have expired
	// during a long build; the resolver keeps it while it is fresh.
	if creds, err := p.resolver.Resolve(ctx, j.host); err == nil && !creds.Anonymous() {
		p.sec.Add(creds.Secrets()...)
		p.sec.AddPair(creds.Auth.Username, creds.Auth.Password)
		auth = creds.Auth
	}
	var digest string
	var cacheErrs []error
	err := p.log.Verbatim(func() (err error) {
		if digest, err = docker.Push(ctx, j.ref, auth); err != nil {
			return err
		}
		for _, cache := range j.cacheRefs() {
			if _, err := docker.Push(ctx, cache, auth); err != nil {
				cacheErrs = append(cacheErrs, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	p.logf("Pushed %s@%s", j.ref, digest)
	for _, err := range cacheErrs {
		// A cache that cannot be pushed costs the next run time, not this deploy.
		p.log.Warn(p.sec.Redact("Could not push the build cache (the next build will not reuse it): "+err.Error()), "", 0)
	}
	return digest, nil
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

func (p *pipeline) failJobs(jobs []*job) {
	for _, j := range jobs {
		p.rep.Set(j.loc.Name, report.Failed, "")
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
