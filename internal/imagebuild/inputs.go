package imagebuild

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/registry"
	archive "github.com/moby/go-archive"
)

// DistributionInspector resolves an image reference to the digest its registry serves now,
// through the Docker daemon's GET /distribution/{name}/json (`docker buildx imagetools
// inspect` without pulling). *client.Client from NewClient is one; tests may fake it.
type DistributionInspector interface {
	DistributionInspect(ctx context.Context, imageRef, encodedRegistryAuth string) (registry.DistributionInspect, error)
}

// inputsVersion starts what the inputs digest covers. Changing what goes into the digest
// changes it, so that digests of an older scheme never match.
const inputsVersion = "dagster-branch-deploy inputs v1"

// ReuseTagPrefix starts the tag that Inputs.Tag names.
const ReuseTagPrefix = "inputs-"

// perRunLabels are the labels left out of the inputs digest: they change with every commit or
// branch while the image does not, and would make every run rebuild. See InputsDigest.
var perRunLabels = []string{
	"org.opencontainers.image.revision", // the commit
	"org.opencontainers.image.created",  // the build time, if a caller sets it
	"branch",                            // the branch (set by the action's plan)
}

// PerRunLabels returns the label keys InputsDigest leaves out: those that change with every
// commit, branch or run (org.opencontainers.image.revision, org.opencontainers.image.created and
// branch).
func PerRunLabels() []string { return slices.Clone(perRunLabels) }

// Inputs is the digest of everything that determines the image a Spec builds.
type Inputs struct {
	// Digest is the hex SHA-256 of Items (as a JSON array of strings, in order).
	Digest string
	// Items are what went into Digest, one line each, in a fixed order, for logs: the scheme
	// version, the build context's digest and size, the Dockerfile's digest, build arguments
	// (name and the SHA-256 of the value, never the value), target, platform, inline cache,
	// labels, secret ids, SSH ids, and each external image with the digest it resolved to.
	Items []string
	// Caveats name what determines the image but cannot be seen here, for the log: an ADD of
	// a URL or a Git repository without --checksum (what the URL serves can change while the
	// Dockerfile does not). A run that reuses an image does not fetch them again.
	Caveats []string
	// Context summarises the build context that went in.
	Context ContextSummary
}

// Tag is the image tag that names these inputs in a location's registry: "inputs-" and the
// digest (71 characters, within Docker's 128).
func (in Inputs) Tag() string { return ReuseTagPrefix + in.Digest }

// ContextSummary describes the files of a build context that went into the inputs digest.
type ContextSummary struct {
	Digest   string // hex SHA-256 of the entries below, as the digest sees them
	Files    int    // regular files
	Dirs     int    // directories
	Symlinks int
	Other    int   // hard links, devices, named pipes
	Bytes    int64 // total size of the regular files
}

// UnresolvedImageError says that an image the Dockerfile uses (FROM, COPY --from,
// RUN --mount=from, or the # syntax= frontend) could not be resolved to a digest, so no inputs
// digest exists: the caller builds normally.
type UnresolvedImageError struct {
	Image string // the reference as the Dockerfile names it, after ARG substitution
	Where string // e.g. `FROM in stage "build"`
	Err   error
}

func (e *UnresolvedImageError) Error() string {
	return fmt.Sprintf("cannot resolve image %s (%s) to a digest: %v", e.Image, e.Where, e.Err)
}

func (e *UnresolvedImageError) Unwrap() error { return e.Err }

// InputsDigest returns a digest of everything that determines the image s builds, so that an
// image built from the same inputs can be reused instead of built again. It reads the build
// context and the Dockerfile and, through docker, asks the registries what the external images
// resolve to now; it builds nothing.
//
// What goes in:
//   - the build context as the builder sends it: the files .dockerignore does not exclude (the
//     Dockerfile and .dockerignore are always in, as for the build), read with the same
//     selection as the context tar (see buildContext.tarOptions); for each entry its path, type,
//     permission bits (with setuid, setgid, sticky), the SHA-256 of a regular file's content,
//     a symlink's target (never followed), a hard link's target, and extended attributes that
//     the tar carries. Not mtimes, owners, or excluded files: touching a file, or changing a
//     file that .dockerignore excludes, keeps the digest;
//   - the Dockerfile: its path in the context and the SHA-256 of its content, or of
//     DockerfileContent for a generated one;
//   - the build arguments (sorted; map order does not matter), Target, Platform, InlineCache;
//   - Labels, except the per-run ones (PerRunLabels: org.opencontainers.image.revision,
//     org.opencontainers.image.created, branch). Images are immutable, so an image that is
//     reused keeps the labels it was built with: its revision label names the commit it was
//     built from ("reused from <commit>"), not the commit being deployed;
//   - the ids of Secrets (never the values) and of SSH entries (never the agent or key paths);
//   - the digest that each external image of the stages that make the target resolves to now:
//     FROM images (after ARG substitution with the build arguments and the ARG defaults;
//     not scratch, not earlier stages), COPY --from and RUN --mount=from images, and the
//     BuildKit frontend of a `# syntax=` directive (or of the BUILDKIT_SYNTAX build argument).
//     An image pinned by digest is taken as written; the others are resolved with
//     docker.DistributionInspect, with the credentials of s.PullAuth for their registry. A
//     base image that moved (a new python:3.12 release) changes the digest.
//
// Not in: Tags, CacheFrom, PullAuth, secret values, the builder (BuildKit or classic), and
// whatever a RUN step fetches from the network. ADD of a URL or a Git repository without
// --checksum is listed in Inputs.Caveats.
//
// An image that cannot be resolved (a private image without credentials, a registry that is
// down, a FROM that depends on BUILDPLATFORM) gives an *UnresolvedImageError; any error means
// no digest, and the caller builds as it would without one.
func InputsDigest(ctx context.Context, docker DistributionInspector, s Spec) (Inputs, error) {
	bc, err := prepareSpecContext(s)
	if err != nil {
		return Inputs{}, err
	}
	dockerfile := bc.generated
	dockerfileItem := fmt.Sprintf("dockerfile: generated, %d bytes, sha256:%s", len(dockerfile), inputsSHA256(dockerfile))
	if dockerfile == nil {
		p := filepath.Join(bc.dir, filepath.FromSlash(bc.dockerfile))
		if dockerfile, err = os.ReadFile(p); err != nil {
			return Inputs{}, fmt.Errorf("reading Dockerfile %s: %w", p, err)
		}
		dockerfileItem = fmt.Sprintf("dockerfile: %s, %d bytes, sha256:%s", bc.dockerfile, len(dockerfile), inputsSHA256(dockerfile))
	}
	df, err := analyzeDockerfile(dockerfile, s)
	if err != nil {
		return Inputs{}, fmt.Errorf("reading %s: %w", bc.describeDockerfile(), err)
	}

	// The images first: when one cannot be resolved there is no digest, and the context need
	// not be read.
	images, err := resolveImages(ctx, docker, df.images, s.PullAuth)
	if err != nil {
		return Inputs{}, err
	}
	sum, err := hashContext(ctx, bc)
	if err != nil {
		return Inputs{}, err
	}

	items := []string{
		"version: " + inputsVersion,
		fmt.Sprintf("context: sha256:%s (%d files, %d directories, %d symlinks, %d other, %d bytes)",
			sum.Digest, sum.Files, sum.Dirs, sum.Symlinks, sum.Other, sum.Bytes),
		dockerfileItem,
		"target: " + strconv.Quote(s.Target),
		"platform: " + strconv.Quote(s.Platform),
		"inline-cache: " + strconv.FormatBool(s.InlineCache),
	}
	for _, k := range slices.Sorted(maps.Keys(s.BuildArgs)) {
		items = append(items, fmt.Sprintf("build-arg: %s (value sha256:%s)", strconv.Quote(k), inputsSHA256([]byte(s.BuildArgs[k]))))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		if slices.Contains(perRunLabels, k) {
			continue
		}
		items = append(items, fmt.Sprintf("label: %s=%s", strconv.Quote(k), strconv.Quote(s.Labels[k])))
	}
	for _, id := range slices.Sorted(maps.Keys(s.Secrets)) {
		items = append(items, "secret: "+strconv.Quote(id))
	}
	for _, id := range sshIDs(s.SSH) {
		items = append(items, "ssh: "+strconv.Quote(id))
	}
	items = append(items, images...)

	enc, err := json.Marshal(items)
	if err != nil {
		return Inputs{}, err
	}
	return Inputs{Digest: inputsSHA256(enc), Items: items, Caveats: df.caveats, Context: sum}, nil
}

// sshIDs are the sorted, distinct ids of Spec.SSH entries ("default", "<id>",
// "<id>=<paths>"): the paths are where this runner keeps its agent or keys, not part of the
// image.
func sshIDs(entries []string) []string {
	var ids []string
	for _, e := range entries {
		id, _, _ := strings.Cut(strings.TrimSpace(e), "=")
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func inputsSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// hashContext digests the files of bc's context as the builder sends them: it reads the same
// tar stream (the selection of archive.TarWithOptions with bc's exclude patterns) and hashes
// each entry's path, type, permission bits, link target, extended attributes and content,
// leaving out times and owners. Contents stream through SHA-256; memory stays flat whatever the
// size of the context.
func hashContext(ctx context.Context, bc *buildContext) (ContextSummary, error) {
	if err := ctx.Err(); err != nil {
		return ContextSummary{}, err
	}
	opts := bc.tarOptions()
	opts.ChownOpts = nil // owners are not hashed anyway
	rc, err := archive.TarWithOptions(bc.dir, opts)
	if err != nil {
		return ContextSummary{}, fmt.Errorf("reading build context %s: %w", bc.dir, err)
	}
	defer rc.Close() // stops the archiver if we end early

	var (
		sum    ContextSummary
		h      = sha256.New()
		fh     = sha256.New()
		buf    = make([]byte, 1<<20)
		tr     = tar.NewReader(rc)
		digest = make([]byte, 0, sha256.Size)
	)
	for {
		if err := ctx.Err(); err != nil {
			return ContextSummary{}, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ContextSummary{}, fmt.Errorf("reading build context %s: %w", bc.dir, err)
		}
		mode := hdr.Mode & 0o7777
		switch hdr.Typeflag {
		case tar.TypeReg:
			n, err := hashReader(fh, tr, buf)
			if err != nil {
				return ContextSummary{}, fmt.Errorf("reading build context file %s: %w", filepath.Join(bc.dir, hdr.Name), err)
			}
			sum.Files++
			sum.Bytes += n
			fmt.Fprintf(h, "f %q %04o %d %x", hdr.Name, mode, n, fh.Sum(digest[:0]))
		case tar.TypeDir:
			sum.Dirs++
			fmt.Fprintf(h, "d %q %04o", hdr.Name, mode)
		case tar.TypeSymlink:
			sum.Symlinks++
			fmt.Fprintf(h, "l %q %q", hdr.Name, hdr.Linkname)
		case tar.TypeLink:
			sum.Other++
			fmt.Fprintf(h, "h %q %q", hdr.Name, hdr.Linkname)
		default: // devices, named pipes
			sum.Other++
			fmt.Fprintf(h, "%c %q %04o %d %d", hdr.Typeflag, hdr.Name, mode, hdr.Devmajor, hdr.Devminor)
		}
		for _, k := range slices.Sorted(maps.Keys(hdr.PAXRecords)) {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				fmt.Fprintf(h, " x %q %q", k, hdr.PAXRecords[k])
			}
		}
		h.Write([]byte{'\n'})
	}
	sum.Digest = hex.EncodeToString(h.Sum(nil))
	return sum, nil
}

// hashReader resets h and writes r to it, returning the number of bytes.
func hashReader(h hash.Hash, r io.Reader, buf []byte) (int64, error) {
	h.Reset()
	return io.CopyBuffer(h, r, buf)
}

// resolveImages resolves each image use to the digest its registry serves, once per
// reference, and returns an item per reference, sorted.
func resolveImages(ctx context.Context, docker DistributionInspector, uses []imageUse, auths map[string]registry.AuthConfig) ([]string, error) {
	resolved := map[string]string{} // normalized reference → item
	for _, u := range uses {
		ref, digest, pinned, err := resolveImage(ctx, docker, u.ref, auths)
		if err != nil {
			return nil, &UnresolvedImageError{Image: u.ref, Where: u.where, Err: err}
		}
		if _, done := resolved[ref]; done {
			continue
		}
		how := "resolved"
		if pinned {
			how = "pinned"
		}
		resolved[ref] = fmt.Sprintf("image: %s %s (%s)", ref, digest, how)
	}
	return slices.Sorted(maps.Values(resolved)), nil
}
