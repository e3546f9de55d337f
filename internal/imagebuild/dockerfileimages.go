package imagebuild

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/registryauth"
)

// imageUse is an external image a Dockerfile uses.
type imageUse struct {
	ref   string // as written, after ARG substitution
	where string // for messages: `FROM in stage "build"`, "# syntax=", …
}

// dockerfileFacts is what the inputs digest needs from a Dockerfile besides its bytes.
type dockerfileFacts struct {
	images  []imageUse // in the Dockerfile's order; the frontend first
	caveats []string
}

// scratchImage is FROM's name for no base image.
const scratchImage = "scratch"

// buildkitSyntaxArg is the build argument that overrides the # syntax= directive.
const buildkitSyntaxArg = "BUILDKIT_SYNTAX"

// Built-in platform arguments that FROM may use. The TARGET ones follow Spec.Platform; the
// BUILD ones are the daemon's platform, unknown here.
var (
	buildPlatformArgs  = []string{"BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT"}
	targetPlatformArgs = []string{"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT"}
)

// analyzeDockerfile finds the external images that the stages making s's target use, as
// BuildKit's Dockerfile frontend does (dockerfile2llb): FROM names are expanded with the
// built-in platform arguments and the ARGs before the first FROM (their defaults, or the build
// arguments that override them); a FROM naming an earlier stage (case-insensitively) or scratch
// is no image; COPY --from names a stage, a stage index or an image; RUN --mount=from a stage or
// an image. Only stages the target depends on count, as only they make the image.
func analyzeDockerfile(dt []byte, s Spec) (dockerfileFacts, error) {
	var facts dockerfileFacts
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return facts, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return facts, err
	}
	if len(stages) == 0 {
		return facts, errors.New("the Dockerfile has no FROM")
	}

	if v, ok := s.BuildArgs[buildkitSyntaxArg]; ok && strings.TrimSpace(v) != "" {
		facts.images = append(facts.images, imageUse{ref: strings.TrimSpace(v), where: "the BuildKit frontend of the build argument " + buildkitSyntaxArg})
	} else if ref, _, _, ok := parser.DetectSyntax(dt); ok && ref != "" {
		facts.images = append(facts.images, imageUse{ref: ref, where: "the BuildKit frontend of the # syntax= directive"})
	}

	lex := shell.NewLex(res.EscapeToken)
	env, unknown := fromPlatformArgs(s, stages[len(stages)-1].Name)
	tainted := map[string]bool{} // meta ARGs whose default uses an unknown platform argument
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := s.BuildArgs[kv.Key]; ok {
				env.set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			r, err := lex.ProcessWordWithMatches(*kv.Value, env)
			if err != nil {
				return facts, fmt.Errorf("ARG %s: %w", kv.Key, err)
			}
			if unknownArgUsed(r, unknown, tainted) != "" {
				tainted[kv.Key] = true
			}
			env.set(kv.Key, r.Result)
		}
	}

	type stageInfo struct {
		name    string // lower case, "" if unnamed
		deps    []int  // stages it uses
		images  []imageUse
		caveats []string
	}
	infos := make([]stageInfo, len(stages))
	byName := map[string]int{}
	for i, st := range stages {
		info := &infos[i]
		info.name = strings.ToLower(st.Name)
		label := "stage " + strconv.Itoa(i)
		if st.Name != "" {
			label = "stage " + strconv.Quote(st.Name)
		}
		r, err := lex.ProcessWordWithMatches(st.BaseName, env)
		if err != nil {
			return facts, fmt.Errorf("FROM %s in %s: %w", st.BaseName, label, err)
		}
		if arg := unknownArgUsed(r, unknown, tainted); arg != "" {
			return facts, fmt.Errorf("FROM %s in %s depends on %s, which is known only when the daemon builds: the base image cannot be resolved beforehand", st.BaseName, label, arg)
		}
		base := r.Result
		switch j, isStage := byName[strings.ToLower(base)]; {
		case base == "":
			return facts, fmt.Errorf("FROM %s in %s: the base name is empty", st.BaseName, label)
		case isStage:
			info.deps = append(info.deps, j)
		case strings.EqualFold(base, scratchImage):
		default:
			info.images = append(info.images, imageUse{ref: base, where: "FROM in " + label})
		}
		for _, cmd := range st.Commands {
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					continue
				}
				if strings.Contains(c.From, "$") {
					return facts, fmt.Errorf("COPY --from=%s in %s: variables are not supported in --from", c.From, label)
				}
				if n, err := strconv.Atoi(c.From); err == nil {
					if n < 0 || n >= len(stages) {
						return facts, fmt.Errorf("COPY --from=%s in %s: no such stage", c.From, label)
					}
					info.deps = append(info.deps, n)
				} else if j, ok := stageByName(stages, c.From); ok {
					info.deps = append(info.deps, j)
				} else {
					info.images = append(info.images, imageUse{ref: c.From, where: "COPY --from in " + label})
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From == "" {
						continue
					}
					if strings.Contains(m.From, "$") {
						return facts, fmt.Errorf("RUN --mount=from=%s in %s: a variable in from cannot be resolved beforehand", m.From, label)
					}
					if j, ok := stageByName(stages, m.From); ok {
						info.deps = append(info.deps, j)
					} else {
						info.images = append(info.images, imageUse{ref: m.From, where: "RUN --mount=from in " + label})
					}
				}
			case *instructions.AddCommand:
				if c.Checksum != "" {
					continue
				}
				for _, src := range c.SourcePaths {
					if isNetworkAddSource(src) {
						info.caveats = append(info.caveats, fmt.Sprintf("ADD %s in %s: what it fetches is not part of the inputs digest (add --checksum to pin it)", src, label))
					}
				}
			}
		}
		if info.name != "" {
			if _, dup := byName[info.name]; !dup {
				byName[info.name] = i
			}
		}
	}

	target := len(stages) - 1
	if s.Target != "" {
		j, ok := byName[strings.ToLower(s.Target)]
		if !ok {
			return facts, fmt.Errorf("target stage %q not found in the Dockerfile", s.Target)
		}
		target = j
	}
	needed := make([]bool, len(stages))
	var visit func(int)
	visit = func(i int) {
		if needed[i] {
			return
		}
		needed[i] = true
		for _, d := range infos[i].deps {
			visit(d)
		}
	}
	visit(target)
	for i, info := range infos {
		if needed[i] {
			facts.images = append(facts.images, info.images...)
			facts.caveats = append(facts.caveats, info.caveats...)
		}
	}
	return facts, nil
}

// stageByName finds the stage named name (case-insensitively).
func stageByName(stages []instructions.Stage, name string) (int, bool) {
	for i, st := range stages {
		if st.Name != "" && strings.EqualFold(st.Name, name) {
			return i, true
		}
	}
	return 0, false
}

// unknownArgUsed returns the first variable that r used or missed and that is unknown here (a
// platform argument the daemon sets) or tainted (an ARG whose default used one); "" if none.
func unknownArgUsed(r shell.ProcessWordResult, unknown []string, tainted map[string]bool) string {
	for _, set := range []map[string]struct{}{r.Matched, r.Unmatched} {
		for _, k := range slices.Sorted(maps.Keys(set)) {
			if slices.Contains(unknown, k) || tainted[k] {
				return k
			}
		}
	}
	return ""
}

// isNetworkAddSource tells an ADD source fetched from the network (a URL or a Git repository).
func isNetworkAddSource(src string) bool {
	l := strings.ToLower(src)
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// fromArgEnv is the shell.EnvGetter of FROM expansion.
type fromArgEnv struct {
	keys []string
	vals map[string]string
}

func (e *fromArgEnv) Get(k string) (string, bool) { v, ok := e.vals[k]; return v, ok }
func (e *fromArgEnv) Keys() []string              { return e.keys }
func (e *fromArgEnv) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

// fromPlatformArgs returns the built-in arguments known for s: the TARGET platform ones when
// s.Platform names one platform, TARGETSTAGE (the target, else lastStage, else "default"), and
// any that a build argument overrides; and the names of those unknown here (the BUILD platform
// ones, the daemon's): a FROM that uses one cannot be resolved before the build.
func fromPlatformArgs(s Spec, lastStage string) (*fromArgEnv, []string) {
	env := &fromArgEnv{vals: map[string]string{}}
	known := map[string]string{}
	if p := strings.TrimSpace(s.Platform); p != "" && !strings.Contains(p, ",") {
		parts := strings.Split(p, "/")
		known["TARGETPLATFORM"] = p
		known["TARGETOS"] = parts[0]
		if len(parts) > 1 {
			known["TARGETARCH"] = parts[1]
		}
		known["TARGETVARIANT"] = ""
		if len(parts) > 2 {
			known["TARGETVARIANT"] = parts[2]
		}
		known["TARGETOSVERSION"] = ""
	}
	var unknown []string
	for _, k := range append(slices.Clone(buildPlatformArgs), targetPlatformArgs...) {
		if v, ok := s.BuildArgs[k]; ok {
			env.set(k, v)
		} else if v, ok := known[k]; ok {
			env.set(k, v)
		} else {
			unknown = append(unknown, k)
		}
	}
	target := cmp.Or(s.Target, lastStage, "default")
	if v, ok := s.BuildArgs["TARGETSTAGE"]; ok {
		target = v
	}
	env.set("TARGETSTAGE", target)
	return env, unknown
}

// resolveImage returns the normalized reference of ref and the digest it names: the one
// written in it (pinned), or the one its registry serves now, asked through docker with the
// credentials of auths for its registry.
func resolveImage(ctx context.Context, docker DistributionInspector, ref string, auths map[string]registry.AuthConfig) (name, digest string, pinned bool, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", false, fmt.Errorf("not an image reference: %w", err)
	}
	if c, ok := named.(reference.Canonical); ok {
		return named.String(), c.Digest().String(), true, nil
	}
	named = reference.TagNameOnly(named)
	auth := lookupAuth(auths, registryauth.Host(named.String()))
	var enc string
	if !registryauth.IsEmpty(auth) {
		if enc, err = registry.EncodeAuthConfig(auth); err != nil {
			return "", "", false, fmt.Errorf("encoding credentials: %w", err)
		}
	}
	if docker == nil {
		return "", "", false, errors.New("no Docker daemon to ask")
	}
	di, err := docker.DistributionInspect(ctx, named.String(), enc)
	if err != nil {
		return "", "", false, errors.New(redact(err.Error(), auth))
	}
	if di.Descriptor.Digest == "" {
		return "", "", false, errors.New("the registry returned no digest")
	}
	if err := di.Descriptor.Digest.Validate(); err != nil {
		return "", "", false, fmt.Errorf("the registry returned an invalid digest: %w", err)
	}
	return named.String(), di.Descriptor.Digest.String(), false, nil
}
