package imagebuild

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RegistryInspector resolves image references through their registries,
// with no Docker daemon: InputsDigest can then run for any builder (the
// daemon or a remote BuildKit).
type RegistryInspector struct{}

// DistributionInspect answers what the daemon's distribution endpoint
// answers: the digest the registry serves for ref now.
func (RegistryInspector) DistributionInspect(ctx context.Context, ref, encodedAuth string) (registry.DistributionInspect, error) {
	var auth registry.AuthConfig
	if encodedAuth != "" {
		a, err := registry.DecodeAuthConfig(encodedAuth)
		if err != nil {
			return registry.DistributionInspect{}, fmt.Errorf("decoding the credentials for %s: %w", ref, err)
		}
		auth = *a
	}
	info, found, err := RemoteImage(ctx, ref, auth)
	switch {
	case err != nil:
		return registry.DistributionInspect{}, err
	case !found:
		return registry.DistributionInspect{}, fmt.Errorf("%s: not found in its registry", ref)
	}
	return registry.DistributionInspect{Descriptor: ocispec.Descriptor{Digest: digest.Digest(info.Digest), MediaType: info.MediaType}}, nil
}
