//go:build docker

package imagebuild

import (
	"archive/tar"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// imageTree reads the directory dir of image ref through a created (never started) container:
// its entries by path relative to dir's parent (e.g. "app/main.py").
func imageTree(t *testing.T, c *client.Client, ref, dir string) map[string]tarFile {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	created, err := c.ContainerCreate(ctx, &container.Config{Image: ref, Entrypoint: []string{"/none"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	rc, _, err := c.CopyFromContainer(ctx, created.ID, dir)
	if err != nil {
		t.Fatalf("reading %s from %s: %v", dir, ref, err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

// TestBuildGeneratedDockerfile builds, with BuildKit and with the classic builder, contexts that
// have their own Dockerfile (whose FROM image does not exist) with a generated Dockerfile that
// copies the whole context: the build uses the generated one, `COPY . /app` sees neither it
// nor a .dockerignore that lists itself, .dockerignore's `*` and `!app` work, the user's
// Dockerfile is copied as an ordinary file, a symlink is copied as a link, and the context
// directory is left as it was.
func TestBuildGeneratedDockerfile(t *testing.T) {
	t.Parallel()
	for _, bt := range builders {
		for _, tc := range generatedContextCases {
			t.Run(bt.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				// The nonce keeps the classic builder's intermediate images to this build: the
				// removal of another build's image would take shared ones away.
				df := "FROM scratch\nARG GREETING=unset\nLABEL generated=yes greeting=$GREETING nonce=" + randomHex(6) + "\nCOPY . /app\n"
				c, b, log := dockerBuilder(t)
				useBuilder(b, bt.buildKit)
				dir, hostFile := generatedContextDir(t, tc.ignore)
				before := snapshotDir(t, dir)
				ref := uniqueRepo(t) + ":v1"
				removeImage(t, c, ref)
				ctx := testCtx(t, 3*time.Minute)

				id, err := b.Build(ctx, Spec{
					ContextDir:        dir,
					DockerfileContent: []byte(df),
					Tags:              []string{ref},
					BuildArgs:         map[string]string{"GREETING": "hi"},
				})
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				insp, err := c.ImageInspect(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				if insp.ID != id || insp.Config.Labels["generated"] != "yes" || insp.Config.Labels["greeting"] != "hi" {
					t.Errorf("image %s (Build said %s) has labels %v, want generated=yes greeting=hi", insp.ID, id, insp.Config.Labels)
				}

				tree := imageTree(t, c, ref, "/app")
				var got []string
				for _, n := range fileNames(tree) {
					got = append(got, strings.TrimPrefix(n, "app/"))
				}
				if !slices.Equal(got, tc.copied) {
					t.Errorf("COPY . /app copied %q, want %q", got, tc.copied)
				}
				for name, e := range tree {
					if e.body == df || strings.HasPrefix(name, "app/"+generatedDockerfilePrefix) && name != "app/"+takenName {
						t.Errorf("the image holds the generated Dockerfile as /%s", name)
					}
				}
				if e, ok := tree["app/Dockerfile"]; ok && e.body != userDockerfile {
					t.Errorf("/app/Dockerfile = %q, want the user's %q", e.body, userDockerfile)
				}
				if e := tree["app/app/link"]; e.typ != tar.TypeSymlink || e.linkname != hostFile {
					t.Errorf("/app/app/link = %+v, want a symlink to %s", e, hostFile)
				}
				if e := tree["app/app/main.py"]; e.uid != 0 || e.gid != 0 {
					t.Errorf("/app/app/main.py owned by %d:%d, want 0:0", e.uid, e.gid)
				}
				if want := fmt.Sprintf("(a generated Dockerfile of %d bytes)", len(df)); !strings.Contains(log.String(), want) {
					t.Errorf("build log lacks %q:\n%s", want, log)
				}
				if after := snapshotDir(t, dir); !maps.Equal(before, after) {
					t.Errorf("the context directory changed:\nbefore %v\nafter  %v", before, after)
				}
			})
		}
	}
}

// TestBuildGeneratedDockerfileChanges builds the same context twice with generated Dockerfiles
// of the same size: the second build must use the second Dockerfile, although BuildKit keeps the
// files synced from a context directory between builds.
func TestBuildGeneratedDockerfileChanges(t *testing.T) {
	t.Parallel()
	for _, bt := range builders {
		t.Run(bt.name, func(t *testing.T) {
			t.Parallel()
			c, b, _ := dockerBuilder(t)
			useBuilder(b, bt.buildKit)
			dir, _ := generatedContextDir(t, "*\n!app\n")
			ctx := testCtx(t, 3*time.Minute)
			nonce := randomHex(6) // see TestBuildGeneratedDockerfile
			for _, v := range []string{"1", "2"} {
				ref := uniqueRepo(t) + ":v" + v
				removeImage(t, c, ref)
				if _, err := b.Build(ctx, Spec{ContextDir: dir, DockerfileContent: []byte("FROM scratch\nLABEL nonce=" + nonce + " v=" + v + "\nCOPY app /app\n"), Tags: []string{ref}}); err != nil {
					t.Fatalf("build %s: %v", v, err)
				}
				insp, err := c.ImageInspect(ctx, ref)
				if err != nil {
					t.Fatal(err)
				}
				if got := insp.Config.Labels["v"]; got != v {
					t.Errorf("build %s: label v = %q, want %q (a stale Dockerfile)", v, got, v)
				}
			}
		})
	}
}

// TestBuildKitGeneratedDockerfileSession: a generated Dockerfile's session serves the context
// and the Dockerfile beside the secrets, and a target and build args work as with a Dockerfile
// of the context.
func TestBuildKitGeneratedDockerfileSession(t *testing.T) {
	t.Parallel()
	c, b, _ := dockerBuilder(t)
	base := busyboxBase(t, c, b)
	useBuilder(b, true)
	dir, _ := generatedContextDir(t, "*\n!app\n")
	token := "tok-" + randomHex(16)
	marker := randomHex(6) // a step new to the daemon, so that the secret is read
	ref := uniqueRepo(t) + ":v1"
	removeImage(t, c, ref)
	df := "FROM " + base + " AS final\n" +
		"ARG GREETING=unset\n" +
		"COPY app/main.py /main.py\n" +
		"RUN --mount=type=secret,id=token echo " + marker + " && cat /run/secrets/token > /token && echo \"$GREETING\" > /greeting\n" +
		"\n" +
		"FROM final AS broken\n" +
		"RUN echo this stage must not run; exit 7\n"
	_, err := b.Build(testCtx(t, 3*time.Minute), Spec{
		ContextDir:        dir,
		DockerfileContent: []byte(df),
		Tags:              []string{ref},
		Target:            "final",
		BuildArgs:         map[string]string{"GREETING": "hello"},
		Secrets:           map[string][]byte{"token": []byte(token)},
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	for path, want := range map[string]string{"/token": token, "/greeting": "hello\n", "/main.py": "print('hi')\n"} {
		if got, _ := imageFile(t, c, ref, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
}
