package awsemu

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/oidcemu"
)

const role = "arn:aws:iam::111122223333:role/gha-push"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func awsConfig(region string, creds aws.CredentialsProvider) aws.Config {
	return aws.Config{Region: region, Credentials: creds, RetryMaxAttempts: 1}
}

func ecrClient(e *Emulator, region string, creds aws.CredentialsProvider) *ecr.Client {
	return ecr.NewFromConfig(awsConfig(region, creds), func(o *ecr.Options) { o.BaseEndpoint = aws.String(e.URL) })
}

func decode(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestECRWithStaticKeys(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{AccessKeys: map[string]string{"AKIAEMULATOR": "static-secret"}, Registries: []string{"123456789012"}})
	ctx := testCtx(t)

	out, err := ecrClient(e, "eu-west-1", credentials.NewStaticCredentialsProvider("AKIAEMULATOR", "static-secret", "")).
		GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{"123456789012"}})
	if err != nil {
		t.Fatalf("GetAuthorizationToken: %v", err)
	}
	d := out.AuthorizationData
	if len(d) != 1 || decode(t, aws.ToString(d[0].AuthorizationToken)) != "AWS:"+e.Password ||
		aws.ToString(d[0].ProxyEndpoint) != "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com" ||
		time.Until(aws.ToTime(d[0].ExpiresAt)) < 11*time.Hour {
		t.Errorf("authorization data = %+v", d)
	}

	for name, tc := range map[string]struct {
		id, secret, registry, want string
	}{
		"wrong secret":   {"AKIAEMULATOR", "wrong-secret", "123456789012", "InvalidSignatureException"},
		"unknown key":    {"AKIAUNKNOWN", "static-secret", "123456789012", "UnrecognizedClientException"},
		"other registry": {"AKIAEMULATOR", "static-secret", "999999999999", "AccessDeniedException"},
		"bad registry":   {"AKIAEMULATOR", "static-secret", "12345", "InvalidParameterException"},
	} {
		_, err := ecrClient(e, "eu-west-1", credentials.NewStaticCredentialsProvider(tc.id, tc.secret, "")).
			GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{tc.registry}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %s", name, err, tc.want)
		}
	}
	if ok, failed := e.Calls(OpECRGetAuthorizationToken); ok != 1 || failed != 4 {
		t.Errorf("Calls = %d ok, %d failed; want 1, 4", ok, failed)
	}

	// Unsigned requests are refused.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "MissingAuthenticationTokenException") {
		t.Errorf("unsigned request: %s %s", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
	}
}

func TestAssumeRoleThenECRPublic(t *testing.T) {
	t.Parallel()
	oidc := oidcemu.Start(t)
	e := Start(t, Options{OIDC: oidc, Roles: []string{role}})
	ctx := testCtx(t)
	stsClient := sts.NewFromConfig(awsConfig("us-east-1", nil), func(o *sts.Options) { o.BaseEndpoint = aws.String(e.URL) })

	assume := func(token, roleARN string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		return stsClient.AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("dagster-branch-deploy-1"), WebIdentityToken: aws.String(token),
		})
	}
	out, err := assume(oidc.Mint(DefaultAudience).Value, role)
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SessionToken) == "" ||
		aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::111122223333:assumed-role/gha-push/dagster-branch-deploy-1" ||
		aws.ToString(out.SubjectFromWebIdentityToken) != oidc.Subject {
		t.Errorf("AssumeRoleWithWebIdentity = %+v, %+v", c, out.AssumedRoleUser)
	}
	if s := e.Sessions(); len(s) != 1 || s[0].SessionName != "dagster-branch-deploy-1" || s[0].RoleARN != role {
		t.Errorf("Sessions() = %+v", s)
	}

	for name, tc := range map[string]struct{ token, role, want string }{
		"token never issued": {"eyJhbGciOiJSUzI1NiJ9.e30.c2ln", role, "InvalidIdentityToken"},
		"wrong audience":     {oidc.Mint("https://iam.googleapis.com/x").Value, role, "Incorrect token audience"},
		"role not trusted":   {oidc.Mint(DefaultAudience).Value, "arn:aws:iam::111122223333:role/other", "AccessDenied"},
		"not a role ARN":     {oidc.Mint(DefaultAudience).Value, "gha-push", "ValidationError"},
	} {
		if _, err := assume(tc.token, tc.role); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %s", name, err, tc.want)
		}
	}

	temp := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	public := func(region string, creds aws.CredentialsProvider) (*ecrpublic.GetAuthorizationTokenOutput, error) {
		return ecrpublic.NewFromConfig(awsConfig(region, creds), func(o *ecrpublic.Options) { o.BaseEndpoint = aws.String(e.URL) }).
			GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	}
	pub, err := public("us-east-1", temp)
	if err != nil {
		t.Fatalf("ECR Public GetAuthorizationToken: %v", err)
	}
	if decode(t, aws.ToString(pub.AuthorizationData.AuthorizationToken)) != "AWS:"+e.Password {
		t.Error("ECR Public token does not hold the password")
	}
	if _, err := public("us-west-2", temp); err == nil || !strings.Contains(err.Error(), "valid region") {
		t.Errorf("ECR Public outside us-east-1: %v", err)
	}
	noSession := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), "")
	if _, err := public("us-east-1", noSession); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Errorf("temporary key without its session token: %v", err)
	}
}
