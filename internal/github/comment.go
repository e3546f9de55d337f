package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	gogithub "github.com/google/go-github/v66/github"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// Commenter keeps exactly one comment of the action on a pull request.
//
// A comment is the action's when it ends with the marker AND was written
// by the identity the token writes as: anyone can post a comment that
// carries the marker, and such a comment is never edited, trusted or
// counted. Two runs that start together may both create a comment; after
// creating, the commenter lists again and deletes its own duplicates,
// keeping the oldest. A comment stamped by a newer run is not overwritten.
type Commenter struct {
	Client *Client
	Number int
	Marker string
	Stamp  platform.Stamp

	id int64 // the comment, once found or created
}

// ID is the comment's ID, 0 until one was found or created.
func (c *Commenter) ID() int64 { return c.id }

// Trailer is what ends the comment: the hidden stamp and marker lines.
// The report renders it last, within the size limit.
func (c *Commenter) Trailer() string { return c.Stamp.Line() + "\n" + c.Marker }

// Write makes body the comment's text; body ends with Trailer() (it is
// added when it does not). It returns a *platform.SupersededError, and writes
// nothing, when the comment shows a newer run.
func (c *Commenter) Write(ctx context.Context, body string) error {
	full := strings.TrimRight(body, "\n")
	if !strings.HasSuffix(full, c.Trailer()) {
		full += "\n" + c.Trailer()
	}
	full += "\n"
	login, err := c.Client.Identity(ctx)
	if err != nil && isStatus(err, http.StatusUnauthorized) {
		return err
	}
	if c.id != 0 {
		// Read it again: another run may have written since.
		cm, _, err := c.Client.gh.Issues.GetComment(ctx, c.Client.Owner, c.Client.Repo, c.id)
		switch {
		case isStatus(err, http.StatusNotFound):
			c.id = 0 // deleted meanwhile: find or create again
		case err != nil:
			return fmt.Errorf("reading comment %d on %s: %w", c.id, c.where(), explain(err))
		default:
			return c.edit(ctx, cm, full)
		}
	}
	if login == "" {
		// Unknown identity (an unusual token): nothing found by the
		// marker can be trusted. Create ours, learn the identity from it,
		// and let the de-duplication below keep the oldest of ours.
		return c.create(ctx, full)
	}
	ours, err := c.ours(ctx, login)
	if err != nil {
		return err
	}
	if len(ours) == 0 {
		return c.create(ctx, full)
	}
	c.id = ours[0].GetID()
	if err := c.edit(ctx, ours[0], full); err != nil {
		return err
	}
	return c.deleteDuplicates(ctx, ours[1:])
}

// create posts a new comment, then removes the duplicates a concurrent run
// may have created at the same time, keeping the oldest.
func (c *Commenter) create(ctx context.Context, full string) error {
	created, _, err := c.Client.gh.Issues.CreateComment(ctx, c.Client.Owner, c.Client.Repo, c.Number, &gogithub.IssueComment{Body: gogithub.String(full)})
	if err != nil {
		return fmt.Errorf("commenting on %s: %w", c.where(), explain(err))
	}
	c.id = created.GetID()
	if c.Client.login == "" {
		c.Client.login = created.GetUser().GetLogin()
	}
	ours, err := c.ours(ctx, c.Client.login)
	if err != nil || len(ours) < 2 {
		return err
	}
	oldest := ours[0]
	if err := c.deleteDuplicates(ctx, ours[1:]); err != nil {
		return err
	}
	if oldest.GetID() == c.id {
		return nil
	}
	c.id = oldest.GetID()
	return c.edit(ctx, oldest, full)
}

// edit replaces an existing comment of ours, unless it shows a newer run.
func (c *Commenter) edit(ctx context.Context, cm *gogithub.IssueComment, full string) error {
	if theirs, ok := platform.ParseStamp(cm.GetBody()); ok && theirs.NewerThan(c.Stamp) {
		return &platform.SupersededError{CommentID: cm.GetID(), Theirs: theirs, Ours: c.Stamp}
	}
	if cm.GetBody() == full {
		return nil
	}
	if _, _, err := c.Client.gh.Issues.EditComment(ctx, c.Client.Owner, c.Client.Repo, cm.GetID(), &gogithub.IssueComment{Body: gogithub.String(full)}); err != nil {
		return fmt.Errorf("editing comment %d on %s: %w", cm.GetID(), c.where(), explain(err))
	}
	return nil
}

func (c *Commenter) deleteDuplicates(ctx context.Context, dups []*gogithub.IssueComment) error {
	var errs []error
	for _, d := range dups {
		if _, err := c.Client.gh.Issues.DeleteComment(ctx, c.Client.Owner, c.Client.Repo, d.GetID()); err != nil && !isStatus(err, http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("deleting duplicate comment %d on %s: %w", d.GetID(), c.where(), explain(err)))
		}
	}
	return errors.Join(errs...)
}

// ours lists the comments that carry the marker and were written by login,
// oldest first, across all pages.
func (c *Commenter) ours(ctx context.Context, login string) ([]*gogithub.IssueComment, error) {
	var out []*gogithub.IssueComment
	opt := &gogithub.IssueListCommentsOptions{ListOptions: gogithub.ListOptions{PerPage: 100}}
	for {
		page, resp, err := c.Client.gh.Issues.ListComments(ctx, c.Client.Owner, c.Client.Repo, c.Number, opt)
		if err != nil {
			return nil, fmt.Errorf("listing comments of %s: %w", c.where(), explain(err))
		}
		for _, cm := range page {
			if cm.GetUser().GetLogin() == login && platform.EndsWithMarker(cm.GetBody(), c.Marker) {
				out = append(out, cm)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetID() < out[j].GetID() })
	return out, nil
}

func (c *Commenter) where() string {
	return fmt.Sprintf("%s/%s#%d", c.Client.Owner, c.Client.Repo, c.Number)
}
