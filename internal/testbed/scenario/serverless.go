package scenario

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	archive "github.com/moby/go-archive"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

// Options change what NewWith sets up.
type Options struct {
	// GitLab sets the scenario up for GitLab CI, as NewGitLab does.
	GitLab bool
	// Serverless, when set, makes the organization a Dagster+ Serverless
	// one (see Serverless).
	Serverless *Serverless
	// Dagster are more options of the Dagster+ emulator, applied after the
	// scenario's own (e.g. dagsteremu.WithLoadPolls(0): locations load on
	// the first poll, for a benchmark that measures the action, not an
	// emulated agent).
	Dagster []dagsteremu.Option
}

// Serverless makes the scenario's Dagster+ organization a Serverless one:
// the scenario starts a second docker-registry, ServerlessRegistry, which
// accepts only ServerlessUser with ServerlessPassword, and the Dagster+
// emulator hands it out (dagsteremu.WithServerless) as the registry of the
// code locations that have no build.registry, with that user and password
// as its token (base64 "<user>:<password>", the form of an ECR token; the
// client takes the user from the token, so it need not be ECR's "AWS").
// The registry is a separate one, with its own credentials, so that a push
// to it proves that the token Dagster+ handed out was used.
type Serverless struct {
	// Harbor makes the registry a Harbor one (registryIsHarbor): the
	// registryUrl handed out is the prefix ServerlessHarborPrefix, under
	// which every location has its own repository. Otherwise it is the
	// one repository ServerlessRepository of all locations, as on ECR.
	Harbor bool
	// AllowCustomBase is registryAllowCustomBase.
	AllowCustomBase bool
	// Pending is how many registry answers say "not available yet" first
	// (dagsteremu.WithServerlessPending).
	Pending int
}

// The Serverless registry's credentials and layout.
const (
	ServerlessUser     = "serverless-pusher"
	ServerlessPassword = "serverless-Pa55word-4567"
	// ServerlessRepository is the repository (ECR layout) and
	// ServerlessHarborPrefix the prefix (Harbor layout) of registryUrl,
	// after the registry's address.
	ServerlessRepository   = "dagster-serverless"
	ServerlessHarborPrefix = "harbor/acme-prod"
)

// startServerless starts the Serverless registry and returns the options
// that make the Dagster+ emulator hand it out.
func (s *Scenario) startServerless(ctx context.Context, o Serverless) ([]dagsteremu.Option, error) {
	reg, err := testbed.StartRegistry(ctx, filepath.Join(s.Dir, "serverless-registry"), ServerlessUser, ServerlessPassword)
	if err != nil {
		return nil, fmt.Errorf("starting the Serverless registry: %w", err)
	}
	s.closers = append(s.closers, func() { _ = reg.Close() })
	s.ServerlessRegistry = reg
	s.ServerlessURL = reg.Addr + "/" + ServerlessRepository
	if o.Harbor {
		s.ServerlessURL = reg.Addr + "/" + ServerlessHarborPrefix
	}
	opts := []dagsteremu.Option{dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{
		URL: s.ServerlessURL, Username: ServerlessUser, Password: ServerlessPassword,
		AllowCustomBase: o.AllowCustomBase, IsHarbor: o.Harbor,
	})}
	if o.Pending > 0 {
		opts = append(opts, dagsteremu.WithServerlessPending(o.Pending))
	}
	return opts, nil
}

// ServerlessRepo returns the repository (the path after the registry's
// address) that location's images go to in the Serverless registry:
// ServerlessRepository for ECR, ServerlessHarborPrefix/<location> for
// Harbor (location must then be a valid repository component as it is).
func (s *Scenario) ServerlessRepo(location string) string {
	repo := strings.TrimPrefix(s.ServerlessURL, s.ServerlessRegistry.Addr+"/")
	if repo == ServerlessHarborPrefix {
		return repo + "/" + location
	}
	return repo
}

// BuildAndPush builds the Docker build context contextDir (its
// Dockerfile) with the daemon of DOCKER_HOST, tags it ref (in reg) and
// pushes it there with reg's credentials, e.g. a base image that a test
// project builds FROM without reaching Docker Hub.
func BuildAndPush(ctx context.Context, reg *testbed.Registry, contextDir, ref string) error {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer docker.Close()
	tarball, err := archive.TarWithOptions(contextDir, &archive.TarOptions{})
	if err != nil {
		return err
	}
	defer tarball.Close()
	resp, err := docker.ImageBuild(ctx, tarball, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("building %s: %w", ref, err)
	}
	err = readJSONMessages(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("building %s: %w", ref, err)
	}
	auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: reg.Username, Password: reg.Password, ServerAddress: reg.Addr})
	if err != nil {
		return err
	}
	push, err := docker.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	err = readJSONMessages(push)
	push.Close()
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// readJSONMessages reads a build or push stream of the Engine API and
// returns its error, with the stream's last lines.
func readJSONMessages(r io.Reader) error {
	var tail []string
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Stream != "" {
			tail = append(tail, strings.TrimRight(m.Stream, "\n"))
			if len(tail) > 20 {
				tail = tail[1:]
			}
		}
		if m.Error != nil {
			return fmt.Errorf("%s\n%s", m.Error.Message, strings.Join(tail, "\n"))
		}
	}
}

// registryGet sends an authenticated GET to reg's HTTP API.
func registryGet(ctx context.Context, reg *testbed.Registry, p, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.URL()+p, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(reg.Username, reg.Password)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %s", p, resp.Status, bytes.TrimSpace(body))
	}
	return resp, nil
}

// maxImageFile is the largest file ImageFiles returns the content of.
const maxImageFile = 8 << 20

// ImageFiles reads the file system of image repo:ref (a tag or digest) out
// of reg through its HTTP API, as a container of it would see it: the
// layers of its manifest (of an index, the linux/amd64 one) applied in
// order, whiteouts removing what lower layers had. It returns the regular
// files by path without the leading "/" ("opt/dagster/app/x.py"); files
// larger than 8 MiB are listed with nil content. Layers must be gzip
// compressed or plain tar.
func ImageFiles(ctx context.Context, reg *testbed.Registry, repo, ref string) (map[string][]byte, error) {
	const accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, " +
		"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
	var m struct {
		Layers []struct {
			Digest    string `json:"digest"`
			MediaType string `json:"mediaType"`
		} `json:"layers"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	for depth := 0; ; depth++ {
		resp, err := registryGet(ctx, reg, "/v2/"+repo+"/manifests/"+ref, accept)
		if err != nil {
			return nil, err
		}
		m.Manifests, m.Layers = nil, nil
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("manifest %s:%s: %w", repo, ref, err)
		}
		if len(m.Manifests) == 0 {
			break
		}
		if depth > 0 {
			return nil, fmt.Errorf("%s:%s: nested indexes", repo, ref)
		}
		ref = m.Manifests[0].Digest
		for _, e := range m.Manifests {
			if e.Platform.OS == "linux" && e.Platform.Architecture == "amd64" {
				ref = e.Digest
				break
			}
		}
	}
	files := map[string][]byte{}
	for _, l := range m.Layers {
		resp, err := registryGet(ctx, reg, "/v2/"+repo+"/blobs/"+l.Digest, "")
		if err != nil {
			return nil, err
		}
		err = applyLayer(files, resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %s (%s) of %s:%s: %w", l.Digest, l.MediaType, repo, ref, err)
		}
	}
	return files, nil
}

// applyLayer applies one layer blob (gzip or plain tar) to files.
func applyLayer(files map[string][]byte, blob io.Reader) error {
	br := bufio.NewReader(blob)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		dir, base := path.Split(name)
		switch {
		case base == ".wh..wh..opq":
			// An opaque directory: nothing below it from lower layers.
			for k := range files {
				if strings.HasPrefix(k, dir) {
					delete(files, k)
				}
			}
		case strings.HasPrefix(base, ".wh."):
			gone := dir + strings.TrimPrefix(base, ".wh.")
			for k := range files {
				if k == gone || strings.HasPrefix(k, gone+"/") {
					delete(files, k)
				}
			}
		case h.Typeflag == tar.TypeReg:
			if h.Size > maxImageFile {
				files[name] = nil
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			files[name] = b
		default:
			// A layer that replaces a file by a directory or a link.
			delete(files, name)
		}
	}
}
