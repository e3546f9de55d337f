package registryauth

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/docker/docker/api/types/registry"
)

const (
	// InputAWSRoleARN names the action input with the IAM role to assume via GitHub OIDC.
	InputAWSRoleARN = "aws_role_arn"
	// AWSAudience is the audience of the GitHub OIDC token exchanged with STS, as
	// aws-actions/configure-aws-credentials requests it.
	AWSAudience = "sts.amazonaws.com"
	// ecrPublicRegion is the only region serving the ECR Public API.
	ecrPublicRegion = "us-east-1"
)

// awsMode is how resolveECR gets AWS credentials.
type awsMode int

const (
	awsRole  awsMode = iota // AssumeRoleWithWebIdentity with the GitHub OIDC token
	awsChain                // the SDK's default chain (Getenv's static keys first)
)

// errAWSNoCredentials marks a failure to find AWS credentials at all (as opposed to AWS refusing
// them).
type errAWSNoCredentials struct{ err error }

func (e *errAWSNoCredentials) Error() string {
	return "the AWS SDK found no credentials: " + e.err.Error()
}
func (e *errAWSNoCredentials) Unwrap() error { return e.err }

func (r *Resolver) resolveECR(ctx context.Context, host string, kind Kind, info ECRInfo) (Credentials, error) {
	if r.AWSRoleARN != "" {
		return r.ecrToken(ctx, host, kind, info, awsRole)
	}
	if r.awsEnvCredentials() {
		c, err := r.ecrToken(ctx, host, kind, info, awsChain)
		var none *errAWSNoCredentials
		if errors.As(err, &none) {
			return c, fmt.Errorf("the AWS credentials the environment names for registry %s are unusable: %w", host, err)
		}
		return c, err
	}
	if c, ok := r.fromInputs(host, kind); ok {
		return c, nil
	}
	c, found, _, err := r.fromDockerConfig(host, kind)
	if err != nil || found {
		return c, err
	}
	// Last, the parts of the default chain the environment does not announce: shared config
	// files and the EC2 instance role.
	c, err = r.ecrToken(ctx, host, kind, info, awsChain)
	var none *errAWSNoCredentials
	if errors.As(err, &none) {
		return r.dockerConfigOrNothing(host, kind, none)
	}
	return c, err
}

// awsEnvCredentials reports whether the environment names AWS credentials for the default chain.
func (r *Resolver) awsEnvCredentials() bool {
	g := r.getenv
	return (g("AWS_ACCESS_KEY_ID") != "" && g("AWS_SECRET_ACCESS_KEY") != "") ||
		g("AWS_WEB_IDENTITY_TOKEN_FILE") != "" || g("AWS_PROFILE") != "" ||
		g("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || g("AWS_CONTAINER_CREDENTIALS_FULL_URI") != ""
}

// ecrToken gets AWS credentials the mode's way and exchanges them for a registry password with
// ECR's (or ECR Public's) GetAuthorizationToken.
func (r *Resolver) ecrToken(ctx context.Context, host string, kind Kind, info ECRInfo, mode awsMode) (Credentials, error) {
	region := info.Region
	service := "Amazon ECR"
	if kind == KindECRPublic {
		region, service = ecrPublicRegion, "Amazon ECR Public"
	}
	var secrets []string
	if mode == awsRole {
		if !roleARNPattern.MatchString(r.AWSRoleARN) {
			return Credentials{}, fmt.Errorf("input %s: %q is not an IAM role ARN (arn:aws:iam::123456789012:role/name)", InputAWSRoleARN, r.AWSRoleARN)
		}
		if r.IDToken == nil {
			return Credentials{}, fmt.Errorf("input %s is set for registry %s, but %w", InputAWSRoleARN, host, errNoOIDC)
		}
	}

	opts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if r.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(r.HTTPClient))
	}
	staticKeys := mode == awsChain && r.getenv("AWS_ACCESS_KEY_ID") != "" && r.getenv("AWS_SECRET_ACCESS_KEY") != ""
	if staticKeys {
		// The SDK reads the same variables from the process environment; taking them from Getenv
		// keeps their precedence (env keys come first in the default chain).
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			r.getenv("AWS_ACCESS_KEY_ID"), r.getenv("AWS_SECRET_ACCESS_KEY"), r.getenv("AWS_SESSION_TOKEN"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return Credentials{}, fmt.Errorf("loading the AWS configuration for registry %s: %w", host, err)
	}

	var origin string
	switch mode {
	case awsRole:
		client := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if ep := r.awsEndpoint("STS"); ep != nil {
				o.BaseEndpoint = ep
			}
		})
		retriever := oidcRetriever{ctx: ctx, r: r, secrets: &secrets}
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, r.AWSRoleARN, retriever, func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = r.sessionName()
		}))
		origin = fmt.Sprintf("an %s token for role %s via %s OIDC (input %s)", service, r.AWSRoleARN, r.oidcName(), InputAWSRoleARN)
	case awsChain:
		origin = fmt.Sprintf("an %s token for the AWS credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", service)
	}

	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		if mode == awsRole {
			return Credentials{}, fmt.Errorf("assuming role %s (input %s) with the %s OIDC token for registry %s: %s", r.AWSRoleARN, InputAWSRoleARN, r.oidcName(), host, redact(err.Error(), secrets...))
		}
		return Credentials{}, &errAWSNoCredentials{err}
	}
	secrets = append(secrets, creds.SecretAccessKey, creds.SessionToken)
	if mode == awsChain && !staticKeys {
		origin = fmt.Sprintf("an %s token for the AWS credentials of the SDK's default chain (%s)", service, creds.Source)
	}

	var token string
	var expires time.Time
	if kind == KindECRPublic {
		client := ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) {
			if ep := r.awsEndpoint("ECR_PUBLIC"); ep != nil {
				o.BaseEndpoint = ep
			}
		})
		out, err := client.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
		if err != nil {
			return Credentials{}, fmt.Errorf("getting an %s token for registry %s with %s: %s", service, host, strings.TrimPrefix(origin, "an "+service+" token for "), redact(err.Error(), secrets...))
		}
		if d := out.AuthorizationData; d != nil {
			token, expires = aws.ToString(d.AuthorizationToken), aws.ToTime(d.ExpiresAt)
		}
	} else {
		client := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
			if ep := r.awsEndpoint("ECR"); ep != nil {
				o.BaseEndpoint = ep
			}
			if info.FIPS {
				o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
			}
		})
		// RegistryIds is deprecated (the token works for every registry the principal may use),
		// but it keeps the request explicit, as amazon-ecr-credential-helper does.
		out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{info.Account}})
		if err != nil {
			return Credentials{}, fmt.Errorf("getting an %s token for registry %s with %s: %s", service, host, strings.TrimPrefix(origin, "an "+service+" token for "), redact(err.Error(), secrets...))
		}
		for _, d := range out.AuthorizationData {
			if aws.ToString(d.AuthorizationToken) != "" {
				token, expires = aws.ToString(d.AuthorizationToken), aws.ToTime(d.ExpiresAt)
				break
			}
		}
	}
	if token == "" {
		return Credentials{}, fmt.Errorf("%s returned no authorization token for registry %s", service, host)
	}
	user, pass, err := decodeECRToken(token)
	if err != nil {
		return Credentials{}, fmt.Errorf("%s returned an unusable authorization token for registry %s: %v", service, host, err)
	}
	return Credentials{
		Host:    host,
		Kind:    kind,
		Auth:    registry.AuthConfig{Username: user, Password: pass, ServerAddress: ConfigKey(host)},
		Source:  SourceAWS,
		Origin:  origin,
		Expires: expires,
		derived: append(secrets, token),
	}, nil
}

// decodeECRToken splits an ECR authorization token, std-base64 of "user:password".
func decodeECRToken(token string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return "", "", errors.New("it is not base64")
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" || pass == "" {
		return "", "", errors.New("it is not of the form user:password")
	}
	return user, pass, nil
}

// awsEndpoint returns the endpoint override for an AWS service ("ECR", "ECR_PUBLIC", "STS") from
// AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL, as the SDK reads them, but through Getenv.
func (r *Resolver) awsEndpoint(service string) *string {
	if strings.EqualFold(r.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return nil
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		if v := r.getenv(k); v != "" {
			return &v
		}
	}
	return nil
}

var (
	roleARNPattern     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)
)

// sessionName is the STS role session name: dagster-branch-deploy-<GITHUB_RUN_ID>, which shows
// in CloudTrail.
func (r *Resolver) sessionName() string {
	name := "dagster-branch-deploy"
	if id := cmp.Or(r.getenv("GITHUB_RUN_ID"), r.getenv("CI_JOB_ID")); id != "" {
		name += "-" + sessionNameInvalid.ReplaceAllString(id, "_")
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// oidcRetriever is a stscreds.IdentityTokenRetriever over Resolver.IDToken.
type oidcRetriever struct {
	ctx     context.Context
	r       *Resolver
	secrets *[]string
}

func (o oidcRetriever) GetIdentityToken() ([]byte, error) {
	tok, err := o.r.idToken(o.ctx, AWSAudience, o.secrets)
	return []byte(tok), err
}
