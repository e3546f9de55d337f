package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
)

// Environment variables of the dagster-cloud CLI (config_utils.py).
const (
	envOrganization = "DAGSTER_CLOUD_ORGANIZATION"
	envAPIToken     = "DAGSTER_CLOUD_API_TOKEN"
	envDeployment   = "DAGSTER_CLOUD_DEPLOYMENT"
	envURL          = "DAGSTER_CLOUD_URL"
	envDagsterEnv   = "DAGSTER_CLOUD_ENV"
	envLoadTimeout  = "DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT"
	envHeartbeat    = "DAGSTER_CLOUD_AGENT_HEARTBEAT_TIMEOUT"
)

// conn holds the connection options every command takes: -o/--organization
// and -u/--api-token/--user-token, with their environment variables.
type conn struct {
	organization, apiToken string
}

func (c *conn) opts() []*opt {
	return []*opt{
		strOpt(&c.organization, "TEXT", "The Dagster+ organization (env "+envOrganization+").", "--organization", "-o"),
		strOpt(&c.apiToken, "TEXT", "A Dagster+ user or agent token (env "+envAPIToken+").", "--api-token", "--user-token", "-u"),
	}
}

// resolve fills the options that were not given from the environment.
func (c *conn) resolve(stdio IO) {
	c.organization = orEnv(stdio, c.organization, envOrganization)
	c.apiToken = orEnv(stdio, c.apiToken, envAPIToken)
}

func orEnv(stdio IO, v, env string) string {
	if v != "" {
		return v
	}
	return stdio.Getenv(env)
}

// The dagster-cloud CLI's messages for a missing token, organization or
// deployment (without its config file, which this tool does not read).
var (
	errNoToken = errors.New("A Dagster Cloud user token must be specified for this command.\n\n" +
		"You may specify a token by:\n- Providing the `--api-token` parameter.\n- Setting the `" + envAPIToken + "` environment variable.")
	errNoOrganization = errors.New("A Dagster Cloud organization must be specified for this command.\n\n" +
		"You may specify your organization by:\n- Providing the `--organization` parameter.\n- Setting the `" + envOrganization + "` environment variable.")
	errNoDeployment = errors.New("A Dagster Cloud deployment must be specified for this command.\n\n" +
		"You may specify a deployment by:\n- Providing the `--deployment` parameter.\n- Setting the `" + envDeployment + "` environment variable.")
)

// orgURL is dagster-cloud's get_org_url: https://<org>.dagster.cloud, or
// https://<org>.<env>.dagster.cloud when DAGSTER_CLOUD_ENV is set (eu for
// the EU region).
func orgURL(stdio IO, organization string) string {
	if env := strings.TrimSpace(stdio.Getenv(envDagsterEnv)); env != "" {
		return "https://" + organization + "." + env + ".dagster.cloud"
	}
	return "https://" + organization + ".dagster.cloud"
}

// deploymentScope splits the URL of a deployment-scoped command into the
// client's base URL and the deployment the requests are scoped to.
//
// The dagster-cloud CLI posts to <url>/graphql and sends the
// Dagster-Cloud-Deployment header when a deployment is given; Dagster+
// takes the header over the path. The client posts to
// <base>/<deployment>/graphql with that header, so:
//   - a URL ending in /<deployment> is the base plus the deployment: the
//     same request;
//   - without a deployment, the URL's last path segment is the deployment
//     (https://acme.dagster.cloud/prod, or the legacy
//     https://dagster.cloud/acme/prod): the same request, with the header
//     naming the deployment the path names;
//   - a deployment with a URL that does not end in it (an organization URL,
//     https://acme.dagster.cloud or https://dagster.cloud/acme) posts to
//     <url>/<deployment>/graphql: the deployment Dagster+ resolves is the
//     same as for dagster-cloud's request.
func deploymentScope(rawURL, deployment string) (base, scope string, err error) {
	u := strings.TrimRight(strings.TrimSpace(rawURL), "/")
	if deployment != "" {
		if b, ok := strings.CutSuffix(u, "/"+deployment); ok {
			return b, deployment, nil
		}
		return u, deployment, nil
	}
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return "", "", fmt.Errorf("--url %q is not a URL like https://<organization>.dagster.cloud/<deployment>", rawURL)
	}
	i := strings.LastIndex(u, "/")
	if parsed.Path == "" || i < len(u)-len(parsed.Path) {
		return "", "", fmt.Errorf("--url %s names no deployment: pass --deployment, or a deployment URL such as https://<organization>.dagster.cloud/<deployment>", rawURL)
	}
	return u[:i], u[i+1:], nil
}

// newClient returns a Dagster+ client for base. Its HTTP client uses
// http.DefaultTransport, which takes its proxy from HTTPS_PROXY/NO_PROXY
// (http.ProxyFromEnvironment) and trusts the system roots (SSL_CERT_FILE,
// SSL_CERT_DIR). logf receives the client's progress and retry messages.
func newClient(base, token string, logf func(string, ...any)) *dagster.Client {
	return dagster.New(base, token,
		dagster.WithHTTPClient(&http.Client{Timeout: 90 * time.Second}),
		dagster.WithLogf(logf),
	)
}

// logTo returns a logf that writes lines to w.
func logTo(w io.Writer) func(string, ...any) {
	return func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
}
