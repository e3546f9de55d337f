package serverless

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/distribution/reference"
)

// MaxTagLength is the longest image tag Docker accepts.
const MaxTagLength = 128

// commitLength is how much of the commit SHA goes into a tag.
const commitLength = 12

// TagInput names what an image tag keeps apart.
type TagInput struct {
	// Branch says the image is for a branch deployment: the tag starts with
	// "branch". Otherwise it starts with Deployment, the full deployment
	// deployed to (e.g. prod).
	Branch     bool
	Deployment string
	// Location is the code location's name.
	Location string
	// Commit is the commit built; its first 12 characters are used.
	Commit string
	// Run and Attempt tell runs of the same commit apart: GITHUB_RUN_ID
	// and GITHUB_RUN_ATTEMPT on GitHub, CI_PIPELINE_ID and CI_JOB_ID on
	// GitLab. Either may be empty, and is then left out.
	Run     string
	Attempt string
}

// ImageTag returns the tag of a Serverless image:
// branch-<location>-<commit>-<run>-<attempt> for a branch deployment,
// <deployment>-<location>-<commit>-<run>-<attempt> for a full one, the
// scheme of the dagster-cloud action's serverless_branch_deploy and
// serverless_prod_deploy. All locations of an ECR organization share one
// repository (registryUrl), so the location must be part of the tag.
//
// Where it differs from the action: the commit is cut to 12 characters (the
// action uses 7; 12 is what this tool's Hybrid tags use); characters a tag
// cannot hold ([^A-Za-z0-9_.-]) become "-", and a part that had to change
// gets an 8-hex-digit hash of its original value so that two locations
// cannot end up with the same tag; a tag longer than 128 characters has its
// location (then deployment) part shortened the same way. The
// dagster-cloud CLI's own `ci build` tag is <deployment>-<location>-<commit>
// (docker_utils.default_image_tag), which does not tell two runs of one
// commit apart.
func ImageTag(in TagInput) (string, error) {
	if strings.TrimSpace(in.Location) == "" {
		return "", errors.New("image tag: no code location name")
	}
	prefix := "branch"
	if !in.Branch {
		if strings.TrimSpace(in.Deployment) == "" {
			return "", errors.New("image tag: no deployment name for a full deployment")
		}
		prefix = tagPart(in.Deployment)
	}
	location := tagPart(in.Location)
	commit := in.Commit
	if len(commit) > commitLength {
		commit = commit[:commitLength]
	}
	rest := make([]string, 0, 3)
	for _, p := range []string{commit, in.Run, in.Attempt} {
		if p = strings.TrimSpace(p); p != "" {
			rest = append(rest, tagPart(p))
		}
	}
	join := func() string { return strings.Join(append([]string{prefix, location}, rest...), "-") }
	tag := join()
	if over := len(tag) - MaxTagLength; over > 0 {
		location = shorten(in.Location, location, len(location)-over)
		tag = join()
	}
	if over := len(tag) - MaxTagLength; over > 0 && !in.Branch {
		prefix = shorten(in.Deployment, prefix, len(prefix)-over)
		tag = join()
	}
	tag = strings.TrimLeft(tag, ".-")
	if !validTag.MatchString(tag) {
		return "", fmt.Errorf("image tag: cannot make a valid tag of %+v (got %q)", in, tag)
	}
	return tag, nil
}

var (
	validTag     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	badTagChars  = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
	badRepoChars = regexp.MustCompile(`[^a-z0-9]+`)
)

// shortHash is 8 hex digits of the SHA-256 of s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// tagPart makes s fit a tag: characters a tag cannot hold become "-", and
// if any did, a hash of s is appended so that different values stay apart.
func tagPart(s string) string {
	s = strings.TrimSpace(s)
	clean := badTagChars.ReplaceAllString(s, "-")
	if clean != s {
		clean = strings.Trim(clean, "-") + "-" + shortHash(s)
	}
	return clean
}

// shorten cuts part (the tag form of original) to at most n characters,
// keeping a hash of original so that different values stay apart.
func shorten(original, part string, n int) string {
	h := shortHash(original)
	keep := n - len(h) - 1
	if keep < 1 {
		return h[:min(max(n, 1), len(h))]
	}
	return strings.TrimRight(part[:min(keep, len(part))], ".-") + "-" + h
}

// repoComponent makes a code location name a repository path component
// ([a-z0-9]+ joined by ".", "_", "__" or "-"): lowercase, and any other run
// of characters becomes "-". If the name had to change, a hash of it is
// appended so that two locations cannot share a repository.
func repoComponent(location string) string {
	lower := strings.ToLower(location)
	var b strings.Builder
	for _, seg := range splitKeep(lower) {
		b.WriteString(seg)
	}
	clean := strings.Trim(b.String(), "-._")
	if clean != location {
		if clean == "" {
			return "location-" + shortHash(location)
		}
		clean += "-" + shortHash(location)
	}
	return clean
}

// splitKeep rewrites separators: ".", "_", "__" and runs of "-" between
// alphanumerics are kept, anything else becomes "-".
func splitKeep(s string) []string {
	var out []string
	last := 0
	for _, m := range badRepoChars.FindAllStringIndex(s, -1) {
		out = append(out, s[last:m[0]])
		sep := s[m[0]:m[1]]
		switch {
		case sep == "." || sep == "_" || sep == "__" || strings.Trim(sep, "-") == "":
		default:
			sep = "-"
		}
		out = append(out, sep)
		last = m[1]
	}
	return append(out, s[last:])
}

// ImageRef returns where a Serverless image goes in the registry Dagster+
// hands out (registryUrl), as the dagster-cloud CLI puts it
// (docker_utils.full_image_ref): {registryUrl}:{tag} for ECR, where
// registryUrl is one repository for all locations; {registryUrl}/{location}:{tag}
// for Harbor (registryIsHarbor), where registryUrl is a deployment-scoped
// prefix and each location gets its own repository. A location name that is
// not a valid repository path component (upper case, other characters) is
// lowercased and cleaned, with a hash of the name appended (the CLI uses the
// name as it is, which Docker would reject).
func ImageRef(registryURL, location, tag string, harbor bool) (string, error) {
	u := strings.TrimRight(strings.TrimSpace(registryURL), "/")
	switch {
	case u == "":
		return "", errors.New("image reference: Dagster+ gave no registry URL")
	case strings.Contains(u, "://"):
		return "", fmt.Errorf("image reference: registry URL %q has a scheme; want host/repository", registryURL)
	case !validTag.MatchString(tag):
		return "", fmt.Errorf("image reference: %q is not a valid tag (at most %d of A-Z a-z 0-9 _ . -, not starting with . or -)", tag, MaxTagLength)
	}
	repo := u
	if harbor {
		if strings.TrimSpace(location) == "" {
			return "", errors.New("image reference: a Harbor registry needs the code location name")
		}
		repo = u + "/" + repoComponent(location)
	}
	ref := repo + ":" + tag
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q (registry URL %q): %v", ref, registryURL, err)
	}
	tagged, ok := named.(reference.NamedTagged)
	if !ok || tagged.Tag() != tag || reference.FamiliarName(named) == "" {
		return "", fmt.Errorf("image reference %q (registry URL %q) is not <repository>:<tag>", ref, registryURL)
	}
	if _, isDigested := named.(reference.Digested); isDigested {
		return "", fmt.Errorf("image reference: registry URL %q holds a digest", registryURL)
	}
	return ref, nil
}
