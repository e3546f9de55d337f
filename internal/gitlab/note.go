package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	gogitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/platform"
)

// MaxNoteBytes bounds a note: GitLab refuses bodies longer than 1,000,000
// characters, and bytes are never fewer than characters.
const MaxNoteBytes = 1_000_000

// Commenter keeps exactly one note of the action on a merge request. It
// is internal/github's Commenter on GitLab's notes API.
//
// A note is the action's when it ends with the marker AND was written by
// the token's own user (GET /user; a project access token's bot) AND is no
// system note: anyone can post a note that carries the marker, and a
// maintainer's token could edit it, but such a note is never edited,
// trusted or counted. Two runs that start together may both create a
// note; after creating, the commenter lists again (every page) and deletes
// its own duplicates, keeping the oldest. A note stamped by a newer run is
// not overwritten.
type Commenter struct {
	Client *Client
	IID    int64 // the merge request
	Marker string
	Stamp  platform.Stamp

	id int64 // the note, once found or created
}

var _ platform.Review = (*Commenter)(nil)

// ID is the note's ID, 0 until one was found or created.
func (c *Commenter) ID() int64 { return c.id }

// MaxBytes is GitLab's note limit.
func (c *Commenter) MaxBytes() int { return MaxNoteBytes }

// Trailer is what ends the note: the hidden stamp and marker lines (GitLab
// hides HTML comments when it renders Markdown).
func (c *Commenter) Trailer() string { return c.Stamp.Line() + "\n" + c.Marker }

// Write makes body the note's text; body ends with Trailer() (it is added
// when it does not). It returns a *platform.SupersededError, and writes
// nothing, when the note shows a newer run.
func (c *Commenter) Write(ctx context.Context, body string) error {
	full := strings.TrimRight(body, "\n")
	if !strings.HasSuffix(full, c.Trailer()) {
		full += "\n" + c.Trailer()
	}
	full += "\n"
	me, err := c.Client.Identity(ctx)
	if err != nil && status(err) == http.StatusUnauthorized {
		return err
	}
	if c.id != 0 {
		// Read it again: another run may have written since.
		n, _, err := c.Client.gl.Notes.GetMergeRequestNote(c.Client.Project, c.IID, c.id, gogitlab.WithContext(ctx))
		switch {
		case status(err) == http.StatusNotFound:
			c.id = 0 // deleted meanwhile: find or create again
		case err != nil:
			return fmt.Errorf("reading note %d on %s: %w", c.id, c.where(), c.Client.explain(err))
		default:
			return c.edit(ctx, n, full)
		}
	}
	if me == nil {
		// Unknown identity: nothing found by the marker can be trusted.
		// Create ours, learn the identity from it, and let the
		// de-duplication below keep the oldest of ours.
		return c.create(ctx, full)
	}
	ours, err := c.ours(ctx, me.ID)
	if err != nil {
		return err
	}
	if len(ours) == 0 {
		return c.create(ctx, full)
	}
	c.id = ours[0].ID
	if err := c.edit(ctx, ours[0], full); err != nil {
		return err
	}
	return c.deleteDuplicates(ctx, ours[1:])
}

// create posts a new note, then removes the duplicates a concurrent run
// may have created at the same time, keeping the oldest.
func (c *Commenter) create(ctx context.Context, full string) error {
	created, _, err := c.Client.gl.Notes.CreateMergeRequestNote(c.Client.Project, c.IID,
		&gogitlab.CreateMergeRequestNoteOptions{Body: gogitlab.Ptr(full)}, gogitlab.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("writing a note on %s: %w", c.where(), c.Client.explain(err))
	}
	c.id = created.ID
	c.Client.learn(created.Author)
	me, err := c.Client.Identity(ctx)
	if err != nil {
		return nil // ours is written; without an identity nothing else is ours for sure
	}
	ours, err := c.ours(ctx, me.ID)
	if err != nil || len(ours) < 2 {
		return err
	}
	oldest := ours[0]
	if err := c.deleteDuplicates(ctx, ours[1:]); err != nil {
		return err
	}
	if oldest.ID == c.id {
		return nil
	}
	c.id = oldest.ID
	return c.edit(ctx, oldest, full)
}

// edit replaces an existing note of ours, unless it shows a newer run.
func (c *Commenter) edit(ctx context.Context, n *gogitlab.Note, full string) error {
	if theirs, ok := platform.ParseStamp(n.Body); ok && theirs.NewerThan(c.Stamp) {
		return &platform.SupersededError{CommentID: n.ID, Theirs: theirs, Ours: c.Stamp}
	}
	if n.Body == full {
		return nil
	}
	if _, _, err := c.Client.gl.Notes.UpdateMergeRequestNote(c.Client.Project, c.IID, n.ID,
		&gogitlab.UpdateMergeRequestNoteOptions{Body: gogitlab.Ptr(full)}, gogitlab.WithContext(ctx)); err != nil {
		return fmt.Errorf("editing note %d on %s: %w", n.ID, c.where(), c.Client.explain(err))
	}
	return nil
}

func (c *Commenter) deleteDuplicates(ctx context.Context, dups []*gogitlab.Note) error {
	var errs []error
	for _, d := range dups {
		if _, err := c.Client.gl.Notes.DeleteMergeRequestNote(c.Client.Project, c.IID, d.ID, gogitlab.WithContext(ctx)); err != nil && status(err) != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("deleting duplicate note %d on %s: %w", d.ID, c.where(), c.Client.explain(err)))
		}
	}
	return errors.Join(errs...)
}

// ours lists the notes that carry the marker and were written by user
// (system notes excepted), oldest first, across all pages.
func (c *Commenter) ours(ctx context.Context, user int64) ([]*gogitlab.Note, error) {
	var out []*gogitlab.Note
	opt := &gogitlab.ListMergeRequestNotesOptions{
		ListOptions: gogitlab.ListOptions{PerPage: 100, Page: 1},
		OrderBy:     gogitlab.Ptr("created_at"),
		Sort:        gogitlab.Ptr("asc"),
	}
	for {
		page, resp, err := c.Client.gl.Notes.ListMergeRequestNotes(c.Client.Project, c.IID, opt, gogitlab.WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("listing the notes of %s: %w", c.where(), c.Client.explain(err))
		}
		for _, n := range page {
			if !n.System && n.Author.ID == user && platform.EndsWithMarker(n.Body, c.Marker) {
				out = append(out, n)
			}
		}
		if resp.NextPage == 0 || resp.NextPage <= opt.Page {
			break
		}
		opt.Page = resp.NextPage
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *Commenter) where() string {
	return fmt.Sprintf("merge request !%d of project %s", c.IID, c.Client.Project)
}
