package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/dagster"
)

// connFlags are the Dagster+ connection flags every command takes.
type connFlags struct {
	organization, apiToken, url string
}

func (f *connFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.organization, "organization", "", "Dagster+ organization (env DAGSTER_CLOUD_ORGANIZATION)")
	cmd.Flags().StringVar(&f.apiToken, "api-token", "", "Dagster+ API token (env DAGSTER_CLOUD_API_TOKEN)")
	cmd.Flags().StringVar(&f.url, "url", "", "Dagster+ URL, instead of https://<organization>.dagster.cloud (env DAGSTER_CLOUD_URL)")
}

func (f *connFlags) client(stdio IO) (*dagster.Client, error) {
	org := envOr(stdio, f.organization, "DAGSTER_CLOUD_ORGANIZATION")
	token := envOr(stdio, f.apiToken, "DAGSTER_CLOUD_API_TOKEN")
	url := envOr(stdio, f.url, "DAGSTER_CLOUD_URL")
	if org == "" && url == "" {
		return nil, errors.New("a Dagster+ organization is needed: pass --organization or set DAGSTER_CLOUD_ORGANIZATION (or --url / DAGSTER_CLOUD_URL)")
	}
	if token == "" {
		return nil, errors.New("a Dagster+ API token is needed: pass --api-token or set DAGSTER_CLOUD_API_TOKEN")
	}
	if url == "" {
		url = dagster.OrgURL(org)
	}
	return dagster.New(url, token,
		dagster.WithHTTPClient(&http.Client{Timeout: 90 * time.Second}),
		dagster.WithLogf(func(format string, a ...any) { fmt.Fprintf(stdio.Stderr, format+"\n", a...) }),
	), nil
}

func newBranchDeploymentCmd(stdio IO) *cobra.Command {
	parent := &cobra.Command{Use: "branch-deployment", Short: "Manage Dagster+ branch deployments"}
	var conn connFlags
	var b dagster.BranchData
	var c dagster.Commit
	var timestamp int64
	var base string
	var readGit bool
	cmd := &cobra.Command{
		Use:   "create-or-update",
		Short: "Create or update a branch deployment and print its name",
		Long: `Create or update the branch deployment of a repository's branch and print its
name (only the name, so that scripts can capture it). Closing a pull request is
--pull-request-status CLOSED or MERGED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := conn.client(stdio)
			if err != nil {
				return err
			}
			if readGit {
				gc, err := cicontext.ReadGitLog(".", "HEAD")
				if err != nil {
					return fmt.Errorf("--read-git-state: could not read the commit with git (is git installed, and is this the repository's checkout?): %w", err)
				}
				c.CommitHash = orStr(c.CommitHash, gc.SHA)
				timestamp = gc.Timestamp.Unix()
				c.CommitMessage, c.AuthorName, c.AuthorEmail = orStr(c.CommitMessage, gc.Title()), orStr(c.AuthorName, gc.AuthorName), orStr(c.AuthorEmail, gc.AuthorEmail)
			}
			if c.CommitHash == "" || timestamp == 0 {
				return errors.New("pass --commit-hash and --timestamp, or --read-git-state")
			}
			if b.RepoName == "" || b.BranchName == "" {
				return errors.New("pass --git-repo-name and --branch-name")
			}
			b.PullRequestStatus = strings.ToUpper(b.PullRequestStatus)
			switch b.PullRequestStatus {
			case "", cicontext.StatusOpen, cicontext.StatusClosed, cicontext.StatusMerged:
			default:
				return fmt.Errorf("--pull-request-status %q: use OPEN, CLOSED or MERGED", b.PullRequestStatus)
			}
			c.Timestamp = float64(timestamp)
			dep, err := client.CreateOrUpdateBranchDeployment(cmd.Context(), b, c, base)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdio.Stdout, dep.Name)
			return nil
		},
	}
	conn.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&b.RepoName, "git-repo-name", "", "repository name, e.g. owner/repo")
	fl.StringVar(&b.BranchName, "branch-name", "", "branch name")
	fl.StringVar(&b.BranchURL, "branch-url", "", "branch web address")
	fl.StringVar(&b.PullRequestURL, "pull-request-url", "", "pull or merge request web address")
	fl.StringVar(&b.PullRequestNumber, "pull-request-id", "", "pull or merge request number")
	fl.StringVar(&b.PullRequestStatus, "pull-request-status", "", "OPEN, CLOSED or MERGED")
	fl.StringVar(&c.CommitHash, "commit-hash", "", "commit SHA")
	fl.Int64Var(&timestamp, "timestamp", 0, "commit time, Unix seconds")
	fl.StringVar(&c.CommitMessage, "commit-message", "", "commit message")
	fl.StringVar(&c.AuthorName, "author-name", "", "commit author name")
	fl.StringVar(&c.AuthorEmail, "author-email", "", "commit author email")
	fl.StringVar(&c.AuthorAvatarURL, "author-avatar-url", "", "commit author avatar address")
	fl.StringVar(&base, "base-deployment-name", "", "deployment the branch deployment is based on (Dagster+ defaults to prod)")
	fl.BoolVar(&readGit, "read-git-state", false, "read the commit hash, time, message and author from `git log -1`")
	// dagster-cloud's aliases.
	fl.StringVar(&b.RepoName, "repo-name", "", "alias of --git-repo-name")
	fl.StringVar(&b.PullRequestURL, "code-review-url", "", "alias of --pull-request-url")
	fl.StringVar(&b.PullRequestNumber, "code-review-id", "", "alias of --pull-request-id")
	for _, alias := range []string{"repo-name", "code-review-url", "code-review-id"} {
		_ = fl.MarkHidden(alias)
	}
	parent.AddCommand(cmd)
	return parent
}

func newDeploymentCmd(stdio IO) *cobra.Command {
	parent := &cobra.Command{Use: "deployment", Short: "Manage code locations of a Dagster+ deployment"}
	var conn connFlags
	var deployment, file, name, image, commitHash, gitURL string
	var loadFlag, heartbeatFlag string
	cmd := &cobra.Command{
		Use:   "add-location",
		Short: "Add or update a code location from dagster_cloud.yaml and wait for it to load",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				name = args[0]
			}
			client, err := conn.client(stdio)
			if err != nil {
				return err
			}
			deployment = envOr(stdio, deployment, "DAGSTER_CLOUD_DEPLOYMENT")
			if deployment == "" {
				return errors.New("a deployment is needed: pass --deployment or set DAGSTER_CLOUD_DEPLOYMENT")
			}
			loadTimeout, err := seconds(stdio, "--location-load-timeout", loadFlag, "DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT", 600*time.Second)
			if err != nil {
				return err
			}
			heartbeatTimeout, err := seconds(stdio, "--agent-heartbeat-timeout", heartbeatFlag, "DAGSTER_CLOUD_AGENT_HEARTBEAT_TIMEOUT", 120*time.Second)
			if err != nil {
				return err
			}
			loc, err := configLocation(file, name)
			if err != nil {
				return err
			}
			if image == "" && loc.Image == "" {
				return fmt.Errorf("location %s has no image: pass --image", loc.Name)
			}
			doc := loc.Document(image, commitHash, gitURL)
			if _, err := client.AddOrUpdateLocation(cmd.Context(), deployment, doc); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Stdout, "Added or updated location %s.\n", loc.Name)
			fmt.Fprintf(stdio.Stdout, "View the status of your locations at %s/locations.\n", client.DeploymentURL(deployment))
			if loadTimeout == 0 {
				return nil
			}
			if _, err := client.WaitForLoad(cmd.Context(), deployment, []string{loc.Name}, dagster.WaitOptions{
				LocationLoadTimeout: loadTimeout, AgentHeartbeatTimeout: heartbeatTimeout,
			}); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Stdout, "Location %s loaded.\n", loc.Name)
			return nil
		},
	}
	conn.add(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&deployment, "deployment", "d", "", "deployment name (env DAGSTER_CLOUD_DEPLOYMENT)")
	fl.StringVar(&file, "location-file", "dagster_cloud.yaml", "dagster_cloud.yaml to read the location from")
	fl.StringVar(&name, "location-name", "", "location name (needed when the file has several)")
	fl.StringVar(&image, "image", "", "image reference to deploy")
	fl.StringVar(&commitHash, "commit-hash", "", "commit SHA shown in Dagster+")
	fl.StringVar(&gitURL, "git-url", "", "web address of the commit shown in Dagster+")
	fl.StringVar(&loadFlag, "location-load-timeout", "", "seconds (or a duration like 10m) to wait for the location to load; 0 = do not wait (env DAGSTER_CLOUD_LOCATION_LOAD_TIMEOUT, default 600)")
	fl.StringVar(&heartbeatFlag, "agent-heartbeat-timeout", "", "seconds to wait for an agent heartbeat (env DAGSTER_CLOUD_AGENT_HEARTBEAT_TIMEOUT, default 120)")
	parent.AddCommand(cmd)
	return parent
}

// seconds reads a timeout from its flag, else its environment variable, as
// whole seconds ("600") or a Go duration ("10m").
func seconds(stdio IO, flag, value, env string, def time.Duration) (time.Duration, error) {
	from := flag
	if value == "" {
		value, from = stdio.Getenv(env), env
	}
	if value == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(value); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(value); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%s %q is not a number of seconds (for example 600, or 10m)", from, value)
}

func orStr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
