package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
	fsutiltypes "github.com/tonistiigi/fsutil/types"
)

// A BuildKit build with a generated Dockerfile does not send the context as the request body.
//
// With a tar body, the daemon hands BuildKit the tar as a remote context, and the Dockerfile
// frontend reads the Dockerfile from that tar and makes all of the tar the context: it applies
// no .dockerignore to it (the client is expected to have left out what .dockerignore excludes),
// and the Engine API has no way to name another source for the Dockerfile. A Dockerfile added
// to the tar would be copied by `COPY . /app`.
//
// So such a build names the remote context "client-session", as `docker build` did with
// BuildKit (DOCKER_BUILDKIT=1) and as `docker buildx build` does with the docker driver, and the
// session serves two directories by file sync: "context", the context directory, from which the
// frontend first reads .dockerignore and then asks for the files its patterns do not exclude;
// and "dockerfile", which holds only the generated Dockerfile, as the file "Dockerfile". The
// Dockerfile is thus never part of the context, whatever the context holds or .dockerignore
// says; `docker buildx build -f - .` does the same with a Dockerfile from stdin.
const (
	clientSessionRemote = "client-session" // the remote context that means "from the session"
	syncedContextDir    = "context"        // the frontend's default names of the two directories
	syncedDockerfileDir = "dockerfile"
)

// fileSync returns the session's file sync service for c: the context, and the Dockerfile (the
// generated one, or the context's file in a directory of its own). Files of the context are
// sent with their modes, times and links (a symlink travels as a link, never followed), owned
// by 0:0 as in the context tar.
func (c *buildContext) fileSync() (session.Attachable, error) {
	dirs, err := c.syncedDirs()
	if err != nil {
		return nil, err
	}
	return filesync.NewFSSyncProvider(dirs), nil
}

// syncedDirs are the directories the session's file sync serves for c.
func (c *buildContext) syncedDirs() (filesync.StaticDirSource, error) {
	root, err := fsutil.NewFS(c.dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", c.dir, err)
	}
	// The .dockerignore patterns apply here too, as docker/cli's synced directory applies them:
	// BuildKit reads .dockerignore through the session and would serve everything when it
	// cannot (a .dockerignore that is a symlink out of the context directory, which the sync
	// does not follow).
	ctxFS, err := fsutil.NewFilterFS(root, &fsutil.FilterOpt{ExcludePatterns: c.excludes, Map: ownedByRoot})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", c.dir, err)
	}
	if c.generated != nil {
		return filesync.StaticDirSource{
			syncedContextDir:    ctxFS,
			syncedDockerfileDir: newSingleFileFS(DefaultDockerfile, c.generated, time.Now()),
		}, nil
	}
	// The Dockerfile's directory, showing only the Dockerfile, as docker/cli sends it.
	dfDir, dfName := path.Split(c.dockerfile)
	dfRoot, err := fsutil.NewFS(filepath.Join(c.dir, filepath.FromSlash(dfDir)))
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", c.dir, err)
	}
	dfFS, err := fsutil.NewFilterFS(dfRoot, &fsutil.FilterOpt{IncludePatterns: []string{dfName}, Map: ownedByRoot})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", c.dir, err)
	}
	return filesync.StaticDirSource{syncedContextDir: ctxFS, syncedDockerfileDir: dfFS}, nil
}

// dockerfileName is the name under which the frontend reads the Dockerfile from the session's
// "dockerfile" directory.
func (c *buildContext) dockerfileName() string {
	if c.generated != nil {
		return DefaultDockerfile
	}
	return path.Base(c.dockerfile)
}

// ownedByRoot makes a synced file owned by 0:0, as docker/cli does (resetUIDAndGID).
func ownedByRoot(_ string, st *fsutiltypes.Stat) fsutil.MapResult {
	st.Uid, st.Gid = 0, 0
	return fsutil.MapResultKeep
}

// singleFileFS is an fsutil.FS holding one regular file in memory.
type singleFileFS struct {
	name string
	data []byte
	// modTime is the time of this build: BuildKit keeps synced files between sessions of the
	// same context directory and may reuse a file whose size and time it has seen before.
	modTime time.Time
}

func newSingleFileFS(name string, data []byte, modTime time.Time) *singleFileFS {
	return &singleFileFS{name: name, data: data, modTime: modTime}
}

// Walk visits the file. target is the path to walk, relative to the root ("/" or "" for all).
func (f *singleFileFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	switch t := filepath.Clean(string(filepath.Separator) + target); t {
	case string(filepath.Separator), string(filepath.Separator) + f.name:
	default:
		return &fs.PathError{Op: "walk", Path: target, Err: fs.ErrNotExist}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st := &fsutiltypes.Stat{
		Path:    f.name,
		Mode:    0o644,
		Size:    int64(len(f.data)),
		ModTime: f.modTime.UnixNano(),
	}
	return fn(f.name, &fsutil.DirEntryInfo{Stat: st}, nil)
}

// Open opens the file.
func (f *singleFileFS) Open(p string) (io.ReadCloser, error) {
	if filepath.Clean(p) != f.name {
		return nil, &fs.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(f.data)), nil
}
