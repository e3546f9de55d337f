package registryauth

import "testing"

func TestDetect(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	none := env()
	tests := []struct {
		host   string
		getenv func(string) string
		want   Kind
		ecr    ECRInfo
	}{
		// Amazon ECR private, across partitions (hosts as amazon-ecr-credential-helper's tests
		// and the AWS docs write them).
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com", none, KindECR, ECRInfo{"123456789012", "us-east-1", "aws", false}},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", none, KindECR, ECRInfo{"123456789012", "eu-west-1", "aws", false}},
		{"123456789012.dkr.ecr-fips.us-east-2.amazonaws.com", none, KindECR, ECRInfo{"123456789012", "us-east-2", "aws", true}},
		{"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", none, KindECR, ECRInfo{"123456789012", "us-gov-west-1", "aws-us-gov", true}},
		{"123456789012.dkr.ecr.us-gov-east-1.amazonaws.com", none, KindECR, ECRInfo{"123456789012", "us-gov-east-1", "aws-us-gov", false}},
		{"210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn", none, KindECR, ECRInfo{"210987654321", "cn-north-1", "aws-cn", false}},
		{"210987654321.dkr.ecr.cn-northwest-1.amazonaws.com.cn", none, KindECR, ECRInfo{"210987654321", "cn-northwest-1", "aws-cn", false}},
		{"123456789012.dkr-ecr.us-west-2.on.aws", none, KindECR, ECRInfo{"123456789012", "us-west-2", "aws", false}},
		{"123456789012.dkr-ecr-fips.us-gov-east-1.on.aws", none, KindECR, ECRInfo{"123456789012", "us-gov-east-1", "aws-us-gov", true}},
		{"210987654321.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", none, KindECR, ECRInfo{"210987654321", "cn-north-1", "aws-cn", false}},
		{"210987654321.dkr.ecr.us-iso-east-1.c2s.ic.gov", none, KindECR, ECRInfo{"210987654321", "us-iso-east-1", "aws-iso", false}},
		{"123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", none, KindECR, ECRInfo{"123456789012", "us-isob-east-1", "aws-iso-b", false}},
		{"123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", none, KindECR, ECRInfo{"123456789012", "eusc-de-east-1", "aws-eusc", false}},
		{"123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM", none, KindECR, ECRInfo{"123456789012", "us-east-1", "aws", false}},
		{"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:pr-7", none, KindECR, ECRInfo{"123456789012", "us-east-1", "aws", false}},
		// Look-alikes are not ECR.
		{"123456789012.dkr.ecr.us-west-2.amazonaws.com.fake.example.com", none, KindOther, ECRInfo{}},
		{"12345.dkr.ecr.us-east-1.amazonaws.com", none, KindOther, ECRInfo{}},
		{"210987654321.dkr.ecr.cn-north-1.on.aws.com.cn", none, KindOther, ECRInfo{}},
		// ECR Public.
		{"public.ecr.aws", none, KindECRPublic, ECRInfo{}},
		{"public.ecr.aws/a1b2c3d4/app", none, KindECRPublic, ECRInfo{}},
		{"ecr-public.aws.com", none, KindECRPublic, ECRInfo{}},
		// Docker Hub.
		{"docker.io", none, KindDockerHub, ECRInfo{}},
		{"index.docker.io", none, KindDockerHub, ECRInfo{}},
		{"registry-1.docker.io", none, KindDockerHub, ECRInfo{}},
		{"docker.io/library/python", none, KindDockerHub, ECRInfo{}},
		{"user/repo", none, KindDockerHub, ECRInfo{}},
		{"user/repo:1.0", none, KindDockerHub, ECRInfo{}},
		// Google.
		{"gcr.io", none, KindGCR, ECRInfo{}},
		{"eu.gcr.io", none, KindGCR, ECRInfo{}},
		{"us.gcr.io/my-project/app", none, KindGCR, ECRInfo{}},
		{"asia.gcr.io", none, KindGCR, ECRInfo{}},
		{"us-central1-docker.pkg.dev", none, KindGCR, ECRInfo{}},
		{"europe-west4-docker.pkg.dev/proj/repo/img", none, KindGCR, ECRInfo{}},
		{"us-docker.pkg.dev", none, KindGCR, ECRInfo{}},
		{"docker.pkg.dev", none, KindOther, ECRInfo{}},
		{"notgcr.io", none, KindOther, ECRInfo{}},
		// GitHub.
		{"ghcr.io", none, KindGHCR, ECRInfo{}},
		{"ghcr.io/octo-org/app", none, KindGHCR, ECRInfo{}},
		// GitLab: gitlab.com's registry, and a self-hosted one named by CI_REGISTRY.
		{"registry.gitlab.com", none, KindGitLab, ECRInfo{}},
		{"registry.gitlab.com/group/project/image", none, KindGitLab, ECRInfo{}},
		{"gitlab.example.com:5050", env("CI_REGISTRY", "gitlab.example.com:5050"), KindGitLab, ECRInfo{}},
		{"registry.example.com", env("CI_REGISTRY", "Registry.Example.com"), KindGitLab, ECRInfo{}},
		{"gitlab.example.com:5050", none, KindOther, ECRInfo{}},
		{"gitlab.example.com", env("CI_REGISTRY", "gitlab.example.com:5050"), KindOther, ECRInfo{}},
		// Azure.
		{"myreg.azurecr.io", none, KindACR, ECRInfo{}},
		{"myreg.azurecr.io/team/app", none, KindACR, ECRInfo{}},
		{"myreg.azurecr.cn", none, KindACR, ECRInfo{}},
		// Others.
		{"127.0.0.1:5000", none, KindOther, ECRInfo{}},
		{"localhost:5000", none, KindOther, ECRInfo{}},
		{"localhost", none, KindOther, ECRInfo{}},
		{"[::1]:5000", none, KindOther, ECRInfo{}},
		{"quay.io", none, KindOther, ECRInfo{}},
		{"registry.example.com:443", none, KindOther, ECRInfo{}},
	}
	for _, tc := range tests {
		kind, info := Detect(tc.host, tc.getenv)
		if kind != tc.want || info != tc.ecr {
			t.Errorf("Detect(%q) = %q, %+v; want %q, %+v", tc.host, kind, info, tc.want, tc.ecr)
		}
	}
}
