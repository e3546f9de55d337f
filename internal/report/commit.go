package report

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v66/github"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cicontext"
)

// Commit reads a commit's message, author and time from the GitHub API, for
// when the checkout cannot tell (no git in the action's image, or a shallow
// clone without the pull request's head).
func Commit(ctx context.Context, gh *github.Client, repo, sha string) (cicontext.Commit, error) {
	owner, name, _ := strings.Cut(repo, "/")
	rc, _, err := gh.Repositories.GetCommit(ctx, owner, name, sha, nil)
	if err != nil {
		return cicontext.Commit{}, fmt.Errorf("reading commit %s of %s from the GitHub API: %w", sha, repo, explain(err))
	}
	c := rc.GetCommit()
	return cicontext.Commit{
		SHA:         sha,
		Timestamp:   c.GetCommitter().GetDate().Time.UTC(), // as git's %ct
		Message:     strings.TrimSpace(c.GetMessage()),
		AuthorName:  c.GetAuthor().GetName(),
		AuthorEmail: c.GetAuthor().GetEmail(),
		AvatarURL:   rc.GetAuthor().GetAvatarURL(),
	}, nil
}
