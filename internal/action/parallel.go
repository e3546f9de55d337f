package action

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// dedupe merges jobs that build the same image (same context, Dockerfile,
// build arguments, target, platform, secrets and labels but the location's
// own): the build runs once, for the first of them, and is tagged and
// pushed for each. Its location label then names them all.
func dedupe(jobs []*job) []*job {
	var out []*job
	byKey := map[string]*job{}
	for _, j := range jobs {
		k := buildKey(j)
		first, ok := byKey[k]
		if !ok {
			byKey[k] = j
			out = append(out, j)
			continue
		}
		first.also = append(first.also, j)
	}
	for _, b := range out {
		if len(b.also) == 0 {
			continue
		}
		b.spec.Labels = maps.Clone(b.spec.Labels)
		b.spec.Labels["dev.dagster.location"] = strings.Join(b.names(), ",")
		tags := []string{b.ref}
		for _, j := range b.also {
			tags = append(tags, j.ref)
		}
		b.spec.Tags = append(tags, b.cacheRefs()...)
	}
	return out
}

// buildKey is what makes two builds the same.
func buildKey(j *job) string {
	s := j.spec
	labels := maps.Clone(s.Labels)
	delete(labels, "dev.dagster.location")
	secretIDs := slices.Sorted(maps.Keys(s.Secrets))
	dockerfile := sha256.Sum256(s.DockerfileContent)
	b, _ := json.Marshal([]any{s.ContextDir, s.Dockerfile, hex.EncodeToString(dockerfile[:]), s.BuildArgs, s.Target, s.Platform, secretIDs, s.SSH, labels})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// all is the job and the jobs merged into it.
func (j *job) all() []*job { return append([]*job{j}, j.also...) }

// names are the locations the build is for.
func (j *job) names() []string {
	var out []string
	for _, x := range j.all() {
		out = append(out, x.loc.Name)
	}
	return out
}

// progress is what each running build is doing, for the progress lines.
type progress struct {
	mu     sync.Mutex
	now    func() time.Time
	state  map[*job]string
	since  map[*job]time.Time
	order  []*job
	total  int
	finish int
}

func newProgress(builds []*job, now func() time.Time) *progress {
	return &progress{now: now, state: map[*job]string{}, since: map[*job]time.Time{}, order: builds, total: len(builds)}
}

// set records what b does now ("" when it is done).
func (p *progress) set(b *job, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if what == "" {
		delete(p.state, b)
		p.finish++
		return
	}
	p.state[b] = what
	p.since[b] = p.now()
}

// String is a progress line: "Still working (1 of 3 done): etl building for 1m30s, ml pushing for 10s".
func (p *progress) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, b := range p.order {
		if what, ok := p.state[b]; ok {
			parts = append(parts, fmt.Sprintf("%s %s for %s", strings.Join(b.names(), "+"), what, p.now().Sub(p.since[b]).Round(time.Second)))
		}
	}
	sort.Strings(parts)
	waiting := p.total - p.finish - len(parts)
	line := fmt.Sprintf("Still working (%d of %d done): %s", p.finish, p.total, strings.Join(parts, ", "))
	if waiting > 0 {
		line += fmt.Sprintf("; %d waiting for a free slot", waiting)
	}
	return line
}

// syncWriter makes a writer safe for the builder's concurrent writes.
func syncWriter(w io.Writer) io.Writer { return &lockedWriter{w: w} }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
