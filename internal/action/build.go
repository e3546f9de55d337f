package action

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/report"
)

// Docker builds and pushes images; *imagebuild.Builder is the real one.
// It is used from several goroutines: builds run concurrently.
type Docker interface {
	Build(ctx context.Context, s imagebuild.Spec) (string, error)
	Login(ctx context.Context, auth registry.AuthConfig, from string) error
	Push(ctx context.Context, ref string, auth registry.AuthConfig) (string, error)
	// WithLog returns a Docker writing the daemon's output to log, so that
	// concurrent builds keep their logs apart.
	WithLog(log io.Writer) Docker
}

func realDocker(ctx context.Context, log io.Writer) (Docker, error) {
	c, err := imagebuild.NewClient(ctx)
	if err != nil {
		return nil, err
	}
	return builder{imagebuild.NewBuilder(c, log)}, nil
}

// builder is the real Docker.
type builder struct{ *imagebuild.Builder }

func (b builder) WithLog(log io.Writer) Docker { return builder{b.Builder.WithLog(log)} }

// remoteDocker connects to the remote BuildKit of the builder input: it
// builds and pushes without a Docker daemon.
func (p *pipeline) remoteDocker(ctx context.Context, log io.Writer) (Docker, error) {
	var tls *imagebuild.RemoteTLS
	if p.in.BuilderCerts != "" {
		tls = imagebuild.RemoteTLSFromDir(p.plat.ContainerPath(p.in.BuilderCerts))
	}
	r, err := imagebuild.NewRemote(ctx, p.in.Builder, tls, log)
	if err != nil {
		return nil, err
	}
	if !p.pushes() {
		r = r.WithoutPush()
	}
	return remote{r}, nil
}

// remote is a remote BuildKit as the pipeline's Docker.
type remote struct{ *imagebuild.Remote }

func (r remote) WithLog(log io.Writer) Docker { return remote{r.Remote.WithLog(log)} }

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
	pl, err := p.prepare(ctx, locs)
	if err != nil || p.superseded != "" {
		return nil, err
	}
	if err := p.execute(ctx, pl); err != nil {
		return nil, err
	}
	return pl.images, nil
}

// prepare plans the builds, shows them in the report and the comment, and
// stops (p.superseded) when the comment shows that a newer run owns the
// pull request.
func (p *pipeline) prepare(ctx context.Context, locs []config.Location) (*plan, error) {
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
	if len(pl.jobs) > 0 {
		p.comment(ctx) // a newer run's comment makes this run superseded: build nothing
	}
	return pl, nil
}

// execute runs the plan's builds: it connects to the builder, resolves and
// checks every registry's credentials before the first build (so that a
// wrong password fails in seconds), then builds and pushes the jobs,
// max_parallel at a time. Each build's log is kept apart and printed whole,
// as one group, when it ends; while builds run, a progress line says which
// location is doing what. A failing build does not stop the others: all
// are reported, and nothing is deployed.
func (p *pipeline) execute(ctx context.Context, pl *plan) error {
	if len(pl.jobs) == 0 {
		return nil
	}
	newDocker := p.env.NewDocker
	switch {
	case newDocker != nil:
	case p.in.Builder != "":
		newDocker = p.remoteDocker
	default:
		newDocker = realDocker
	}
	docker, err := newDocker(ctx, p.log.Writer())
	if err != nil {
		p.failJobs(pl.jobs)
		return err
	}
	auths, err := p.login(ctx, docker, pl.jobs)
	if err == nil && p.in.DryRun && p.in.Push {
		err = p.checkRegistries(ctx, pl.jobs, auths)
	}
	if err != nil {
		p.failJobs(pl.jobs)
		return err
	}
	builds := dedupe(pl.jobs)
	for _, b := range builds {
		if len(b.also) > 0 {
			p.logf("Locations %s have the same build: it runs once and is tagged for each.", strings.Join(b.names(), ", "))
		}
	}
	limit := max(1, p.in.MaxParallel)
	p.logf("Building %d image(s), %d at a time.", len(builds), min(limit, len(builds)))
	results := make(chan *buildResult)
	progress := newProgress(builds, p.now)
	sem := make(chan struct{}, limit)
	for _, b := range builds {
		b.spec.PullAuth = pullAuth(auths)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results <- p.runBuild(ctx, docker, b, auths[b.host], progress)
		}()
	}
	tick := time.NewTicker(p.progressEvery())
	defer tick.Stop()
	failures := map[*job]error{}
	for done := 0; done < len(builds); {
		select {
		case <-tick.C:
			p.logf("%s", progress.String())
		case r := <-results:
			done++
			p.record(r)
			if r.err != nil {
				failures[r.build] = r.err
			}
		}
	}
	// In the plan's order, whatever order the builds ended in.
	var failed []string
	var errs []error
	for _, b := range builds {
		if err, ok := failures[b]; ok {
			failed = append(failed, b.names()...)
			errs = append(errs, fmt.Errorf("location %s: %w", strings.Join(b.names(), ", "), err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not build code location(s) %s, so nothing was deployed (the log group of each location shows its build output):\n%w",
			strings.Join(failed, ", "), errors.Join(errs...))
	}
	return nil
}

// immutableTag reports a registry's refusal to overwrite a tag (ECR's tag
// immutability, and the errors other registries give for it).
func immutableTag(err error) bool { return imagebuild.IsImmutableTag(err) }

// progressEvery is how often a progress line is printed while builds run.
func (p *pipeline) progressEvery() time.Duration {
	if p.env.ProgressEvery > 0 {
		return p.env.ProgressEvery
	}
	return 30 * time.Second
}

// buildResult is what one build did; its log is printed when it ends.
type buildResult struct {
	build      *job
	reusedFrom string // the commit of the reused image, when reused
	digest     string
	err        error
	log        *bytes.Buffer
	warnings   []string
}

// record prints a finished build's log as one group and records it in the
// report. It runs on the executor's goroutine only.
func (p *pipeline) record(r *buildResult) {
	p.log.Group(p.sec.Redact(fmt.Sprintf("Build %s → %s", strings.Join(r.build.names(), ", "), r.build.ref)))
	_ = p.log.Verbatim(func() error {
		_, err := p.log.Writer().Write(r.log.Bytes())
		return err
	})
	p.log.EndGroup()
	for _, w := range r.warnings {
		if strings.HasPrefix(w, "The registry ") && p.warned[r.build.host] {
			continue // immutable tags: said once per registry
		}
		if strings.HasPrefix(w, "The registry ") {
			p.warned[r.build.host] = true
		}
		p.log.Warn(p.sec.Redact(w), "", 0)
	}
	for _, j := range r.build.all() {
		switch {
		case r.err != nil:
			p.rep.Set(j.loc.Name, report.Failed, p.sec.Redact(r.err.Error()))
		case p.pushes():
			p.logf("Pushed %s@%s", j.ref, r.digest)
			row := p.rep.Location(j.loc.Name)
			row.Digest, row.ReusedFrom = r.digest, r.reusedFrom
			p.rep.Set(j.loc.Name, report.Pushed, "")
		default:
			p.rep.Set(j.loc.Name, report.Built, "")
		}
	}
}

// runBuild builds and pushes one build, logging to its own buffer. With
// reuse on, it first looks in the registry for an image built from the
// same inputs (imagebuild.InputsDigest names it): when there is one, that
// image is tagged with this run's tags (no layers move) and nothing is
// built; else the build also pushes that inputs tag for later runs.
func (p *pipeline) runBuild(ctx context.Context, docker Docker, b *job, auth registry.AuthConfig, pr *progress) *buildResult {
	r := &buildResult{build: b, log: &bytes.Buffer{}}
	log := syncWriter(r.log)
	d := docker.WithLog(log)
	defer pr.set(b, "")
	// Fetched again: a short-lived token (ECR, Google) may have expired
	// while other builds ran; the resolver keeps it while it is fresh.
	fresh := func() {
		if creds, err := p.resolver.Resolve(ctx, b.host); err == nil && !creds.Anonymous() {
			p.sec.Add(creds.Secrets()...)
			p.sec.AddPair(creds.Auth.Username, creds.Auth.Password)
			auth = creds.Auth
		}
	}
	spec := b.spec
	var reuseRef string
	if p.in.Reuse && p.pushes() {
		pr.set(b, "looking for an image of the same inputs")
		fresh()
		var reused bool
		if reuseRef, reused = p.reuse(ctx, b, auth, r, log); reused {
			return r
		}
		if reuseRef != "" {
			// The inputs tag goes with the images, before the cache images.
			n := len(b.all())
			spec.Tags = append(append(append([]string{}, spec.Tags[:n]...), reuseRef), spec.Tags[n:]...)
		}
	}
	pr.set(b, "building")
	// The builder's errors name the reference and the context already.
	if _, r.err = d.Build(ctx, spec); r.err != nil || !p.pushes() {
		return r
	}
	pr.set(b, "pushing")
	fresh()
	for _, j := range b.all() {
		digest, err := d.Push(ctx, j.ref, auth)
		if err != nil {
			r.err = err
			return r
		}
		r.digest = digest
	}
	if reuseRef != "" {
		if _, err := d.Push(ctx, reuseRef, auth); err != nil && !immutableTag(err) {
			r.warnings = append(r.warnings, "Could not push the inputs tag (later runs will build again): "+err.Error())
		}
	}
	for _, cache := range b.cacheRefs() {
		if _, err := d.Push(ctx, cache, auth); err != nil {
			// A cache that cannot be pushed costs the next run time, not this deploy.
			if immutableTag(err) {
				r.warnings = append(r.warnings, fmt.Sprintf("The registry %s keeps tags immutable, so the build cache tags (%s) cannot be updated: builds there do not reuse a cache. Set cache: false for these locations, or exclude the buildcache* tags from tag immutability.", b.host, cache))
				continue
			}
			r.warnings = append(r.warnings, "Could not push the build cache (the next build will not reuse it): "+err.Error())
		}
	}
	return r
}

// reuse looks for an image built from the same inputs as b. It returns the
// inputs tag ("" when the inputs cannot be named: an unresolvable FROM
// image) and whether the image was reused: then every location's tag points
// at it and r holds its digest and commit.
func (p *pipeline) reuse(ctx context.Context, b *job, auth registry.AuthConfig, r *buildResult, log io.Writer) (string, bool) {
	reg := p.registry()
	in, err := imagebuild.InputsDigest(ctx, reg, b.spec)
	if err != nil {
		fmt.Fprintf(log, "Not looking for an earlier image of the same inputs: %v\n", err)
		return "", false
	}
	for _, c := range in.Caveats {
		fmt.Fprintf(log, "Note: %s\n", c)
	}
	reuseRef := b.ref[:strings.LastIndex(b.ref, ":")] + ":" + in.Tag()
	info, found, err := reg.RemoteImage(ctx, reuseRef, auth)
	if err != nil {
		fmt.Fprintf(log, "Could not look for %s (building): %v\n", reuseRef, err)
		return reuseRef, false
	}
	if !found {
		fmt.Fprintf(log, "No image of these inputs yet (%s): building.\n", in.Tag())
		return reuseRef, false
	}
	for _, j := range b.all() {
		digest, err := reg.TagRemote(ctx, reuseRef, j.ref, auth)
		if err != nil {
			fmt.Fprintf(log, "Could not tag %s as %s (building instead): %v\n", reuseRef, j.ref, err)
			return reuseRef, false
		}
		r.digest = digest
	}
	r.reusedFrom = info.Labels["org.opencontainers.image.revision"]
	fmt.Fprintf(log, "Reused %s@%s, built from commit %s with the same inputs: tagged %s; nothing was built.\n",
		reuseRef, info.Digest, orDefault(r.reusedFrom, "(unknown)"), strings.Join(refs(b.all()), ", "))
	return reuseRef, true
}

func refs(jobs []*job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ref)
	}
	return out
}

// Registry is what reuse asks of registries; imagebuild's functions are
// the real one.
type Registry interface {
	imagebuild.DistributionInspector
	RemoteImage(ctx context.Context, ref string, auth registry.AuthConfig) (imagebuild.RemoteInfo, bool, error)
	TagRemote(ctx context.Context, src, dst string, auth registry.AuthConfig) (string, error)
}

type realRegistry struct{ imagebuild.RegistryInspector }

func (realRegistry) RemoteImage(ctx context.Context, ref string, auth registry.AuthConfig) (imagebuild.RemoteInfo, bool, error) {
	return imagebuild.RemoteImage(ctx, ref, auth)
}

func (realRegistry) TagRemote(ctx context.Context, src, dst string, auth registry.AuthConfig) (string, error) {
	return imagebuild.TagRemote(ctx, src, dst, auth)
}

func (p *pipeline) registry() Registry {
	if p.env.Registry != nil {
		return p.env.Registry
	}
	return realRegistry{}
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
		OIDCName:                    reg.OIDCName,
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
		switch {
		case err != nil && p.policyBuild:
			// A run that gets no secrets and no OIDC token (a fork's, Dependabot's)
			// cannot log in however the workflow asks it to; it only builds, so
			// credentials matter just for private base images.
			p.logf("Registry %s: no login in this run without secrets (%v); using it anonymously.", j.host, err)
			creds, err = registryauth.Credentials{Host: j.host}, nil
		case err != nil && !p.in.Push && errors.Is(err, registryauth.ErrNoCredentials):
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

// containerSSH maps the ssh entries ("id=path,path", "default", "<id>") to
// what the builder takes where the action runs: paths are mapped to where
// the action sees them, and an entry without paths (the job's ssh-agent)
// gets the agent's socket as the platform maps it. An agent the action
// cannot reach (a socket outside what a Docker action sees) is an error
// that says what works.
func (p *pipeline) containerSSH(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		id, paths, ok := strings.Cut(e, "=")
		if !ok || strings.TrimSpace(paths) == "" {
			sock, err := p.plat.AgentSocket()
			if err != nil {
				return nil, &InputError{"ssh", fmt.Sprintf("%q uses the job's ssh-agent, but %v", e, err)}
			}
			if sock == "" {
				out = append(out, e) // the builder says that SSH_AUTH_SOCK is not set
				continue
			}
			out = append(out, strings.TrimSpace(id)+"="+sock)
			continue
		}
		ps := strings.Split(paths, ",")
		for i := range ps {
			ps[i] = p.plat.ContainerPath(ps[i])
		}
		out = append(out, id+"="+strings.Join(ps, ","))
	}
	return out, nil
}
