package registryauth

import (
	"net"
	"os"
	"regexp"
	"strings"
)

// Kind is the kind of registry a host belongs to; it decides where Resolve looks for
// credentials.
type Kind string

const (
	KindECR       Kind = "ecr"        // Amazon ECR private: <account>.dkr.ecr.<region>.amazonaws.com
	KindECRPublic Kind = "ecr-public" // Amazon ECR Public: public.ecr.aws
	KindDockerHub Kind = "dockerhub"  // Docker Hub: docker.io, index.docker.io, bare user/repo
	KindGCR       Kind = "gcr"        // Google Container Registry and Artifact Registry
	KindGHCR      Kind = "ghcr"       // GitHub Container Registry: ghcr.io
	KindGitLab    Kind = "gitlab"     // GitLab container registry: registry.gitlab.com or $CI_REGISTRY
	KindACR       Kind = "acr"        // Azure Container Registry: <name>.azurecr.io
	KindOther     Kind = "other"      // anything else, e.g. a private registry on 127.0.0.1:5000
)

// ECRInfo is what an Amazon ECR private registry host tells: the registry's account ID, its
// region and partition, and whether it is a FIPS endpoint.
type ECRInfo struct {
	Account   string // 12-digit AWS account ID, e.g. "123456789012"
	Region    string // e.g. "us-east-1", "cn-north-1", "us-gov-west-1"
	Partition string // "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f" or "aws-eusc"
	FIPS      bool   // a dkr.ecr-fips / dkr-ecr-fips host
}

// ecrPattern is amazon-ecr-credential-helper's (ecr-login/api/client.go): account, optional
// FIPS, region and the partitions' DNS suffixes, including the dual-stack "dkr-ecr…on.aws" form.
var ecrPattern = regexp.MustCompile(`^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// Detect tells the kind of registry host is (a host as returned by Host; a repository
// reference such as "user/repo" or "ghcr.io/o/r" is reduced to its host first). For ECR
// private it also parses the account, region and partition. getenv (nil: os.Getenv) supplies
// CI_REGISTRY, the host of a self-hosted GitLab's registry.
func Detect(host string, getenv func(string) string) (Kind, ECRInfo) {
	if getenv == nil {
		getenv = os.Getenv
	}
	host = strings.TrimSpace(host)
	if strings.Contains(host, "/") {
		host = Host(host)
	}
	host = strings.ToLower(host)
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}

	if ci := strings.ToLower(strings.TrimSpace(getenv("CI_REGISTRY"))); ci != "" {
		if strings.Contains(ci, "/") {
			ci = Host(ci + "/x")
		}
		if ci == host {
			return KindGitLab, ECRInfo{}
		}
	}
	if m := ecrPattern.FindStringSubmatch(name); m != nil {
		return KindECR, ECRInfo{Account: m[1], FIPS: m[2] == "-fips", Region: m[3], Partition: ecrPartition(m[3], m[4])}
	}
	switch {
	case name == "public.ecr.aws" || name == "ecr-public.aws.com":
		return KindECRPublic, ECRInfo{}
	case name == "docker.io" || name == "index.docker.io" || name == "registry-1.docker.io" || name == "registry.hub.docker.com":
		return KindDockerHub, ECRInfo{}
	case name == "gcr.io" || strings.HasSuffix(name, ".gcr.io") || strings.HasSuffix(name, "-docker.pkg.dev"):
		return KindGCR, ECRInfo{}
	case name == "ghcr.io":
		return KindGHCR, ECRInfo{}
	case name == "registry.gitlab.com":
		return KindGitLab, ECRInfo{}
	case strings.HasSuffix(name, ".azurecr.io") || strings.HasSuffix(name, ".azurecr.cn") || strings.HasSuffix(name, ".azurecr.us"):
		return KindACR, ECRInfo{}
	}
	return KindOther, ECRInfo{}
}

// ecrPartition maps a region and the DNS suffix of an ECR host to the AWS partition.
func ecrPartition(region, suffix string) string {
	switch suffix {
	case "amazonaws.com.cn", "on.amazonwebservices.com.cn":
		return "aws-cn"
	case "amazonaws.eu":
		return "aws-eusc"
	case "c2s.ic.gov":
		return "aws-iso"
	case "sc2s.sgov.gov":
		return "aws-iso-b"
	case "cloud.adc-e.uk":
		return "aws-iso-e"
	case "csp.hci.ic.gov":
		return "aws-iso-f"
	}
	if strings.HasPrefix(region, "us-gov-") {
		return "aws-us-gov"
	}
	return "aws"
}
