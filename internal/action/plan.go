package action

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/imagebuild"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

// plan is what a run builds and deploys, decided before anything is built:
// the image of every location, and the builds that make them.
type plan struct {
	// images is the image reference (with its tag) of every location,
	// built or prebuilt, by name.
	images map[string]string
	// prebuilt are the locations deployed with their own image.
	prebuilt []config.Location
	// jobs are the builds, in the file's order.
	jobs []*job
}

// job is the build of one location's image.
type job struct {
	loc  config.Location
	ref  string          // the image reference pushed and deployed
	host string          // the registry host, for credentials
	spec imagebuild.Spec // Tags: the locations' images, then the cache images
	// cache are the cache images pushed besides the images.
	cache []string
	// also are locations with the same build, tagged from this one's
	// (see dedupe).
	also []*job
}

// cacheRefs are the cache images the job pushes besides its locations'
// images.
func (j *job) cacheRefs() []string { return j.cache }

// plan decides the images and builds of locs. It reads the checkout (build
// paths, the Serverless Dockerfile of a location without one) and talks to
// no builder or registry: nothing outside the project is ever sent to a
// builder, since every context and Dockerfile is checked here, before the
// first build.
func (p *pipeline) plan(locs []config.Location) (*plan, error) {
	locs, err := p.placeServerless(locs)
	if err != nil {
		return nil, err
	}
	for _, l := range locs {
		if err := p.cfg.CheckBuildable(l); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(locs, func(l config.Location) bool { return l.NeedsBuild }) {
		if p.ssh, err = p.containerSSH(p.in.SSH); err != nil {
			return nil, err
		}
	}
	checked := map[string]bool{} // build contexts checked for git credentials
	perRegistry := map[string]int{}
	for _, l := range locs {
		if l.NeedsBuild {
			perRegistry[repository(l.Build.Registry)]++
		}
	}
	pl := &plan{images: map[string]string{}}
	for _, l := range locs {
		if !l.NeedsBuild {
			pl.images[l.Name] = l.Image
			pl.prebuilt = append(pl.prebuilt, l)
			continue
		}
		shared := perRegistry[repository(l.Build.Registry)] > 1
		ref := l.Build.Registry + ":" + p.imageTag(l, shared)
		if r, ok := p.serverlessRef(l); ok {
			ref = r
		}
		bp, err := p.cfg.BuildPaths(l, p.projectDir, p.in.Dockerfile)
		if _, ok := p.serverlessRef(l); ok && err == nil {
			err = p.serverlessDockerfile(l, bp)
		}
		if err != nil {
			return nil, err
		}
		if !checked[bp.ContextDir] {
			checked[bp.ContextDir] = true
			p.warnGitCredential(l, bp.ContextDir)
		}
		pl.images[l.Name] = ref
		spec := p.spec(l, bp, ref, shared)
		if strings.Contains(spec.Platform, ",") && p.in.Builder == "" {
			return nil, fmt.Errorf("location %s: platform %q lists several platforms: a manifest list needs a remote BuildKit (the builder input or BUILDKIT_HOST); the Docker daemon builds one platform", l.Name, spec.Platform)
		}
		pl.jobs = append(pl.jobs, &job{loc: l, ref: ref, host: registryauth.Host(l.Build.Registry), spec: spec, cache: spec.Tags[1:]})
	}
	return pl, nil
}

// warnGitCredential warns, once per build context and at the line that
// sets it, when the context would send a .git/config that holds a
// credential (actions/checkout's Authorization header with
// persist-credentials: true): `COPY . .` would bake it into an image that is
// pushed. The warning names the configuration key, never its value.
func (p *pipeline) warnGitCredential(l config.Location, dir string) {
	key, err := imagebuild.GitCredential(dir)
	if err != nil {
		p.logf("Could not check %s for git credentials: %v", filepath.Join(dir, ".git", "config"), err)
		return
	}
	if key == "" {
		return
	}
	line := l.Build.DirectoryLine
	if line == 0 {
		line = l.Line
	}
	ctxDir := filepath.ToSlash(relative(p.workspaceOr("."), dir))
	p.warnAt([]*config.Error{{File: p.cfg.Path, Line: line, Msg: fmt.Sprintf(
		"The build context %s of location %s holds .git/config with a credential (%s), and no .dockerignore excludes it: "+
			"an image that copies the context would contain it. Check out with `persist-credentials: false` (actions/checkout), "+
			"or add `.git` to %s/.dockerignore.", ctxDir, l.Name, key, ctxDir)}})
}

// branchSlug is a branch name as a tag part: tag characters only, and
// short enough, with a hash that keeps two long branch names apart.
func branchSlug(branch string) string {
	slug := sanitizeTag(branch)
	if len(slug) <= 40 {
		return slug
	}
	sum := sha256.Sum256([]byte(branch))
	return slug[:31] + "-" + hex.EncodeToString(sum[:4])
}

// spec is the build of one location: the action's build inputs with the
// location's build section laid over them.
func (p *pipeline) spec(l config.Location, paths config.BuildPaths, ref string, shared bool) imagebuild.Spec {
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
		SSH:        p.ssh,
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
		// Inline cache images: <registry>:buildcache (one per location when
		// several share the registry) is the default branch's. A pull
		// request reads it and its own, buildcache-<branch>, and writes
		// only its own, so a pull request never overwrites what the default
		// branch builds from.
		suffix := ""
		if shared {
			suffix = "-" + sanitizeTag(l.Name)
		}
		mainCache := b.Registry + ":" + truncateTag("buildcache", suffix)
		own := mainCache
		if p.ci.Mode == cicontext.ModeBranch {
			own = b.Registry + ":" + truncateTag("buildcache-"+branchSlug(p.ci.Branch), suffix)
			spec.CacheFrom = []string{own}
		}
		spec.CacheFrom = append(spec.CacheFrom, mainCache)
		spec.InlineCache = true
		if p.pushes() {
			spec.Tags = append(spec.Tags, own)
		}
	}
	return spec
}
