package action

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/config"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/serverless"
)

// serverlessRun is what a Dagster+ Serverless organization hands out for a
// run: the registry its agent pulls from, and its token.
type serverlessRun struct {
	reg dagster.ServerlessRegistry
	// refs holds the image reference of each location built for the
	// Serverless registry, generated the Dockerfile made for each of those
	// that has none.
	refs      map[string]string
	generated map[string][]byte
}

// detectAgent asks Dagster+ whether the organization is Serverless. For a
// Serverless one it sets the heartbeat default, says once that PEX fast
// deploys are not used, and, when a location is built without a registry
// of its own, gets the Serverless registry and checks the base image before
// any build. The registry is asked at the base deployment's scope, as
// dagster-cloud-action does.
func (p *pipeline) detectAgent(ctx context.Context, locs []config.Location) error {
	agentType, err := p.client.AgentType(ctx, p.in.Deployment)
	if err != nil {
		return fmt.Errorf("asking Dagster+ the agent type of deployment %s: %w", p.in.Deployment, err)
	}
	if p.in.HeartbeatDefault {
		p.in.AgentHeartbeatTimeout = serverless.DefaultHeartbeatTimeout(agentType, anyAgentQueue(locs))
	}
	if agentType != dagster.AgentTypeServerless {
		return nil
	}
	p.logf("Deployment %s is on Dagster+ Serverless: code locations without a build.registry are built as Docker images and pushed to the Serverless registry.", p.in.Deployment)
	if signals := serverless.DetectPEX(p.workspaceOr(p.projectDir), p.lookupEnv); len(signals) > 0 {
		p.log.Notice(p.sec.Redact(serverless.PEXMessage(signals)))
	}
	need := false
	for _, l := range locs {
		need = need || l.NeedsBuild && l.Build.Registry == ""
	}
	if !need {
		return nil
	}
	reg, err := p.client.ServerlessRegistry(ctx, p.in.Deployment)
	if err != nil {
		return fmt.Errorf("getting the Serverless registry of deployment %s: %w", p.in.Deployment, err)
	}
	p.sec.Add(reg.Password)
	p.sec.AddPair(reg.Username, reg.Password)
	if err := serverless.CheckBaseImage(p.in.BaseImage, reg.AllowCustomBase); err != nil {
		return &InputError{"base_image", err.Error()}
	}
	p.serverless = &serverlessRun{reg: reg, refs: map[string]string{}, generated: map[string][]byte{}}
	return nil
}

func (p *pipeline) lookupEnv(k string) (string, bool) {
	v := p.plat.Getenv(k)
	return v, v != ""
}

func anyAgentQueue(locs []config.Location) bool {
	for _, l := range locs {
		if q, _ := l.Document("", "", "")["agent_queue"].(string); q != "" {
			return true
		}
	}
	return false
}

// placeServerless gives each location that is built without a registry of
// its own its image in the Serverless registry, and that repository as its
// build.registry (so that credentials, the cache and tags follow as for any
// registry).
func (p *pipeline) placeServerless(locs []config.Location) ([]config.Location, error) {
	if p.serverless == nil {
		return locs, nil
	}
	var on []int
	for i, l := range locs {
		if l.NeedsBuild && l.Build.Registry == "" {
			on = append(on, i)
		}
	}
	out := slices.Clone(locs)
	for _, i := range on {
		l := out[i]
		ref, err := p.serverlessImage(l, len(on) > 1 && !p.serverless.reg.IsHarbor)
		if err != nil {
			return nil, err
		}
		out[i].Build.Registry = ref[:strings.LastIndex(ref, ":")]
		p.serverless.refs[l.Name] = ref
	}
	return out, nil
}

// serverlessRef is the location's image when it is built for the
// Serverless registry.
func (p *pipeline) serverlessRef(l config.Location) (string, bool) {
	if p.serverless == nil {
		return "", false
	}
	ref, ok := p.serverless.refs[l.Name]
	return ref, ok
}

// serverlessImage is a Serverless location's image: the repository the
// Serverless registry gives it, and the tag that keeps deployments,
// locations and runs apart (the image_tag input wins).
func (p *pipeline) serverlessImage(l config.Location, shared bool) (string, error) {
	tag := p.in.ImageTag
	if tag == "" {
		var err error
		if tag, err = serverless.ImageTag(serverless.TagInput{
			Branch: p.ci.Mode == cicontext.ModeBranch, Deployment: p.in.Deployment, Location: l.Name,
			Commit: p.ci.Commit.SHA, Run: p.ci.RunID, Attempt: p.ci.RunAttempt,
		}); err != nil {
			return "", err
		}
	} else if shared {
		tag = truncateTag(tag, "-"+sanitizeTag(l.Name))
	}
	return serverless.ImageRef(p.serverless.reg.URL, l.Name, tag, p.serverless.reg.IsHarbor)
}

// serverlessDockerfile decides a Serverless location's Dockerfile: its own
// when the context has one, else one generated in upstream's serverless
// layout, kept in p.serverless.generated.
func (p *pipeline) serverlessDockerfile(l config.Location, bp config.BuildPaths) error {
	df := bp.Dockerfile
	if !filepath.IsAbs(df) {
		df = filepath.Join(bp.ContextDir, df)
	}
	if _, err := os.Stat(df); err == nil {
		p.logf("Location %s: building with its own Dockerfile %s.", l.Name, bp.Dockerfile)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	layout, err := serverless.DetectLayout(bp.ContextDir)
	if err != nil {
		return fmt.Errorf("location %s: %w", l.Name, err)
	}
	layout.PythonVersion, layout.BaseImage, layout.EnvVars = p.in.PythonVersion, p.in.BaseImage, p.in.EnvVars
	content, err := serverless.Dockerfile(layout)
	if err != nil {
		return fmt.Errorf("location %s (no Dockerfile in %s, so one is generated): %w", l.Name, bp.ContextDir, err)
	}
	p.serverless.generated[l.Name] = content
	base := layout.BaseImage
	if base == "" {
		base = "python:" + layout.PythonVersion + "-slim"
	}
	p.logf("Location %s: no Dockerfile, so one is generated (FROM %s, %s).", l.Name, base, strings.Join(layout.Files(), ", "))
	return nil
}
