// Command bench measures the action binary side by side with the docker CLI
// and with itself, on this machine, and prints a markdown table of ratios
// (absolute times are noise on a shared 2-core machine; a ratio of two runs
// made in turn on the same machine is not). It never asserts a goal: a
// missed goal is a row that says so. It exits non-zero only when a
// measurement could not be made (a run failed, a daemon did not answer).
//
// Run it through bench/run.sh, which starts dockerd and buildkitd as
// scripts/test.sh does and builds the binary. The action runs as the
// end-to-end tests run it (internal/testbed/scenario): a real
// docker-registry, the Dagster+ and GitHub emulators, a git workspace, the
// binary with the runner's environment. The docker CLI side runs `docker
// build` (BuildKit) and `docker push` of a context of the same shape, to the
// same registry, on the same daemon.
//
// Measurements (see BENCHMARKS.md for what each means):
//
//	full     full action run (pull request: build, push, deploy, wait for load, comment)
//	         ÷ docker build + docker push of a fresh context of the same size
//	rerun    re-run of an unchanged commit (new run id) ÷ its first run
//	parallel four locations, max_parallel 4 ÷ max_parallel 1
//	big      a 1 GiB / 20k-file context: peak RSS of the binary, and time ÷ docker CLI
//	remote   remote BuildKit, mode=max registry cache: warm re-run after a one-line
//	         change ÷ cold run
//
// The bench prunes the build cache of the buildkitd it is given (the cold
// runs need an empty one): point it at a test buildkitd, never at a shared
// fleet. With -prune it also prunes the Docker daemon's build cache when
// done (the private test daemon of scripts/dockerd.sh); it always removes
// the images it made.
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	bkclient "github.com/moby/buildkit/client"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/scenario"
)

// sizes are what a run measures with: the full bench, or the smoke run
// (each measurement once, tiny).
type sizes struct {
	pairs       int   // runs of each side per measurement (the median is reported)
	contextMiB  int   // full/rerun: the context
	parMiB      int   // parallel: each location's context
	parSleep    int   // parallel: seconds of the RUN step that stands for dependency downloads
	parCPUMiB   int   // parallel, second row: each location's context, no waiting
	bigBytes    int64 // big: the context
	bigFiles    int   // big: files in it
	bigPairs    int
	remoteSleep int // remote: seconds of the dependency stage's RUN step
	remoteMiB   int // remote: MiB the dependency stage writes
}

var full = sizes{pairs: 5, contextMiB: 64, parMiB: 16, parSleep: 3, parCPUMiB: 48, bigBytes: 1 << 30, bigFiles: 20000, bigPairs: 1, remoteSleep: 5, remoteMiB: 64}
var smoke = sizes{pairs: 1, contextMiB: 1, parMiB: 1, parSleep: 1, parCPUMiB: 1, bigBytes: 4 << 20, bigFiles: 400, bigPairs: 1, remoteSleep: 1, remoteMiB: 1}

type bench struct {
	binary, docker, work string
	sz                   sizes
	prune                bool
	bkHost, bkCerts      string
	log                  io.Writer // progress, to stderr
	runs                 map[*scenario.Scenario]int
	saved                int // runs whose log is in <work>/logs
}

// row is a line of the table.
type row struct {
	what   string
	ratio  float64
	unit   string // "×" for a ratio, "MiB" for the RSS
	goal   float64
	detail string
}

func main() {
	b := &bench{log: os.Stderr, runs: map[*scenario.Scenario]int{}}
	smokeFlag := flag.Bool("smoke", false, "each measurement once, with tiny sizes (under about a minute): checks that the bench works")
	n := flag.Int("n", 0, "pairs of runs per measurement (default 5; 1 with -smoke)")
	bigN := flag.Int("big-n", 0, "pairs of runs of the 1 GiB measurement (default 1)")
	only := flag.String("only", "", "comma-separated measurements to run (full, parallel, big, remote); default all")
	out := flag.String("out", "", "also write the table to this file")
	flag.StringVar(&b.binary, "binary", "", "the action binary (bench/run.sh builds it)")
	flag.StringVar(&b.docker, "docker", defaultDocker(), "the docker CLI (Debian's docker.io one builds with BuildKit without buildx)")
	flag.StringVar(&b.work, "work", "", "scratch directory (default: a new temporary one, removed at the end)")
	flag.BoolVar(&b.prune, "prune", false, "prune the Docker daemon's build cache when done (only for a private test daemon)")
	flag.Parse()
	b.sz = full
	if *smokeFlag {
		b.sz = smoke
	}
	if *n > 0 {
		b.sz.pairs = *n
	}
	if *bigN > 0 {
		b.sz.bigPairs = *bigN
	}
	b.bkHost, b.bkCerts = os.Getenv("BUILDKIT_HOST"), os.Getenv("BUILDKIT_CERT_PATH")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	table, err := b.run(ctx, *smokeFlag, *only)
	if table != "" {
		fmt.Print(table)
		if *out != "" {
			if werr := os.WriteFile(*out, []byte(table), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func defaultDocker() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	return "docker"
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context, isSmoke bool, only string) (string, error) {
	if b.binary == "" {
		return "", errors.New("-binary is required (bench/run.sh builds it)")
	}
	var err error
	if b.binary, err = filepath.Abs(b.binary); err != nil {
		return "", err
	}
	if os.Getenv("DOCKER_HOST") == "" {
		return "", errors.New("DOCKER_HOST is not set: run bench/run.sh, which starts dockerd")
	}
	if b.work == "" {
		dir, err := os.MkdirTemp("", "dbd-bench")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(dir)
		b.work = dir
	}
	want := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name)
	}
	load0 := loadavg()
	start := time.Now()
	var rows []row
	var errs []error
	measure := func(name string, f func(context.Context) ([]row, error)) {
		if !want(name) {
			return
		}
		b.logf("measuring %s", name)
		t0 := time.Now()
		rs, err := f(ctx)
		rows = append(rows, rs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		b.logf("%s took %s", name, time.Since(t0).Round(time.Second))
	}
	measure("full", b.measureFull)
	measure("parallel", b.measureParallel)
	measure("big", b.measureBig)
	if want("remote") && (b.bkHost == "" || b.bkCerts == "") {
		errs = append(errs, errors.New("remote: BUILDKIT_HOST and BUILDKIT_CERT_PATH are not set (bench/run.sh starts the test buildkitd)"))
	} else {
		measure("remote", b.measureRemote)
	}
	if b.prune {
		b.cli(ctx, "", "builder", "prune", "-af")
	}
	table := b.table(rows, isSmoke, load0, loadavg(), time.Since(start))
	return table, errors.Join(errs...)
}

// table renders the rows with what they were measured on.
func (b *bench) table(rows []row, isSmoke bool, load0, load1 string, took time.Duration) string {
	var t strings.Builder
	mode := fmt.Sprintf("median of %d pairs", b.sz.pairs)
	if isSmoke {
		mode = "smoke run: each measurement once, tiny sizes; the ratios mean nothing"
	}
	fmt.Fprintf(&t, "Measured %s on %s: %d CPUs (%s), %s of memory; load average %s before, %s after; %s; took %s.\n",
		time.Now().UTC().Format("2006-01-02"), hostDesc(), runtime.NumCPU(), cpuModel(), memTotal(), load0, load1, mode, took.Round(time.Second))
	fmt.Fprintf(&t, "Docker daemon %s, docker CLI %s (BuildKit), buildkitd %s.\n\n", b.dockerVersion("{{.Server.Version}}"), b.dockerVersion("{{.Client.Version}}"), b.buildkitdVersion())
	t.WriteString("| measurement | result | goal | | detail |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		res, goal := fmt.Sprintf("%.2f×", r.ratio), fmt.Sprintf("≤ %.2f×", r.goal)
		if r.unit == "MiB" {
			res, goal = fmt.Sprintf("%.0f MiB", r.ratio), fmt.Sprintf("≤ %.0f MiB", r.goal)
		}
		verdict := "met"
		switch {
		case r.goal == 0:
			goal, verdict = "–", ""
		case r.ratio > r.goal:
			verdict = "**missed**"
		}
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s |\n", r.what, res, goal, verdict, r.detail)
	}
	return t.String()
}

// --- the measurements -------------------------------------------------------

// measureFull: a full action run ÷ docker build + docker push of a fresh
// context of the same size, and the re-run of each action run's commit ÷
// that run.
func (b *bench) measureFull(ctx context.Context) ([]row, error) {
	size := int64(b.sz.contextMiB) << 20
	s, err := b.newScenario(ctx, "full", map[string]string{
		"dagster_cloud.yaml": locationsYAML("app"),
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	cfg, err := b.login(ctx, s)
	if err != nil {
		return nil, err
	}
	var action, docker, rerun, rss []float64
	var rerunOK int
	for i := 0; i < b.sz.pairs; i++ {
		runAction := func() error {
			if err := writeContext(filepath.Join(s.Workspace, "app"), size, 1); err != nil {
				return err
			}
			if err := s.CommitAll(fmt.Sprintf("Change %d", i)); err != nil {
				return err
			}
			res, err := b.runAction(ctx, s, nil)
			if err != nil {
				return err
			}
			action = append(action, res.Elapsed.Seconds())
			rss = append(rss, float64(res.MaxRSSKiB)/1024)
			// The same commit again, in a new run.
			again, err := b.runAction(ctx, s, nil)
			if err != nil {
				return err
			}
			rerun = append(rerun, again.Elapsed.Seconds()/res.Elapsed.Seconds())
			if strings.Contains(again.Stdout, "Reused ") && !strings.Contains(again.Stdout, "\n#1 ") {
				rerunOK++
			}
			return nil
		}
		runDocker := func() error {
			dir := filepath.Join(b.work, fmt.Sprintf("cli-full-%d", i))
			if err := writeContext(dir, size, 1); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			d, err := b.buildPush(ctx, cfg, dir, fmt.Sprintf("%s/acme/cli:%d", s.Registry.Addr, i))
			if err != nil {
				return err
			}
			docker = append(docker, d.Seconds())
			return nil
		}
		// Alternate which goes first, so that neither always finds the
		// machine warmer.
		first, second := runAction, runDocker
		if i%2 == 1 {
			first, second = runDocker, runAction
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}
		b.logf("full pair %d: action %.1fs (re-run %.2f×), docker CLI %.1fs", i+1, action[i], rerun[i], docker[i])
	}
	b.removeImages(ctx, s.Registry.Addr)
	ratios := make([]float64, len(action))
	for i := range action {
		ratios[i] = action[i] / docker[i]
	}
	rows := []row{{
		what:  fmt.Sprintf("full action run ÷ `docker build` + `docker push`, fresh %d MiB context", b.sz.contextMiB),
		ratio: median(ratios), unit: "×", goal: 1.05,
		detail: fmt.Sprintf("median of %d pairs (range %.2f–%.2f); action %.1f s, docker CLI %.1f s (medians); the action run also deploys, waits for the load and writes the PR comment; its peak RSS %.0f MiB",
			len(ratios), slices.Min(ratios), slices.Max(ratios), median(action), median(docker), slices.Max(rss)),
	}, {
		what:  "unchanged re-run ÷ first run (same commit, new run id)",
		ratio: median(rerun), unit: "×", goal: 0.10,
		detail: fmt.Sprintf("median of %d; %d of %d re-runs reused the image (tagged in the registry, nothing built or pushed)", len(rerun), rerunOK, len(rerun)),
	}}
	if rerunOK != len(rerun) {
		return rows, fmt.Errorf("%d of %d re-runs of an unchanged commit did not reuse the image", len(rerun)-rerunOK, len(rerun))
	}
	return rows, nil
}

// measureParallel: four locations with max_parallel 4 ÷ max_parallel 1,
// each run with fresh content (nothing cached, nothing reused); first with
// a RUN step that waits (as a dependency download does), then with none.
func (b *bench) measureParallel(ctx context.Context) ([]row, error) {
	locs := []string{"loc1", "loc2", "loc3", "loc4"}
	var rows []row
	for _, variant := range []struct {
		mib, sleep int
		what       string
	}{
		{b.sz.parMiB, b.sz.parSleep, fmt.Sprintf("four locations, parallel ÷ sequential (each: %d MiB context, a RUN step that waits %d s as a download does)", b.sz.parMiB, b.sz.parSleep)},
		{b.sz.parCPUMiB, 0, fmt.Sprintf("four locations, parallel ÷ sequential, no waiting (each: %d MiB context: hashing, layer, push only)", b.sz.parCPUMiB)},
	} {
		s, err := b.newScenario(ctx, "parallel", map[string]string{"dagster_cloud.yaml": locationsYAML(locs...)})
		if err != nil {
			return rows, err
		}
		var par, seq []float64
		for i := 0; i < b.sz.pairs; i++ {
			run := func(maxParallel string) (float64, error) {
				for _, l := range locs {
					dir := filepath.Join(s.Workspace, l)
					if err := writeContext(dir, int64(variant.mib)<<20, 1); err != nil {
						return 0, err
					}
					if variant.sleep > 0 {
						df := fmt.Sprintf("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep %d && echo %s > /deps\"]\nCOPY . /opt/dagster/app/\n", variant.sleep, randomHex())
						if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
							return 0, err
						}
						if err := s.WriteFiles(map[string]string{l + "/busybox": scenario.Busybox}); err != nil {
							return 0, err
						}
					}
				}
				if err := s.CommitAll("Change every location"); err != nil {
					return 0, err
				}
				res, err := b.runAction(ctx, s, map[string]string{"max_parallel": maxParallel})
				if err != nil {
					return 0, err
				}
				return res.Elapsed.Seconds(), nil
			}
			order := []string{"4", "1"}
			if i%2 == 1 {
				order = []string{"1", "4"}
			}
			for _, mp := range order {
				d, err := run(mp)
				if err != nil {
					s.Close()
					return rows, err
				}
				if mp == "4" {
					par = append(par, d)
				} else {
					seq = append(seq, d)
				}
			}
			b.logf("parallel pair %d (sleep %d): max_parallel 4 %.1fs, 1 %.1fs", i+1, variant.sleep, par[i], seq[i])
		}
		b.removeImages(ctx, s.Registry.Addr)
		s.Close()
		ratios := make([]float64, len(par))
		for i := range par {
			ratios[i] = par[i] / seq[i]
		}
		rows = append(rows, row{
			what: variant.what, ratio: median(ratios), unit: "×", goal: 0.6,
			detail: fmt.Sprintf("median of %d pairs (range %.2f–%.2f); max_parallel 4: %.1f s, 1: %.1f s (medians)", len(ratios), slices.Min(ratios), slices.Max(ratios), median(par), median(seq)),
		})
	}
	return rows, nil
}

// measureBig: a context of bigBytes in bigFiles files: the binary's peak
// RSS, and its run ÷ the docker CLI's build and push of a context of the
// same shape.
func (b *bench) measureBig(ctx context.Context) ([]row, error) {
	s, err := b.newScenario(ctx, "big", map[string]string{"dagster_cloud.yaml": locationsYAML("big")})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	cfg, err := b.login(ctx, s)
	if err != nil {
		return nil, err
	}
	var action, docker, rss []float64
	for i := 0; i < b.sz.bigPairs; i++ {
		dir := filepath.Join(s.Workspace, "big")
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := writeContext(dir, b.sz.bigBytes, b.sz.bigFiles); err != nil {
			return nil, err
		}
		if err := s.CommitAll("A big context"); err != nil {
			return nil, err
		}
		res, err := b.runAction(ctx, s, nil)
		if err != nil {
			return nil, err
		}
		action = append(action, res.Elapsed.Seconds())
		rss = append(rss, float64(res.MaxRSSKiB)/1024)
		cliDir := filepath.Join(b.work, "cli-big")
		if err := writeContext(cliDir, b.sz.bigBytes, b.sz.bigFiles); err != nil {
			return nil, err
		}
		d, err := b.buildPush(ctx, cfg, cliDir, fmt.Sprintf("%s/acme/cli:big%d", s.Registry.Addr, i))
		os.RemoveAll(cliDir)
		if err != nil {
			return nil, err
		}
		docker = append(docker, d.Seconds())
		b.logf("big pair %d: action %.1fs (peak RSS %.0f MiB), docker CLI %.1fs", i+1, action[i], rss[i], docker[i])
	}
	b.removeImages(ctx, s.Registry.Addr)
	ratios := make([]float64, len(action))
	for i := range action {
		ratios[i] = action[i] / docker[i]
	}
	shape := fmt.Sprintf("%s / %d-file context", humanBytes(b.sz.bigBytes), b.sz.bigFiles)
	return []row{{
		what: "peak RSS of the binary, " + shape, ratio: slices.Max(rss), unit: "MiB", goal: 100,
		detail: fmt.Sprintf("max of %d runs: the binary's VmHWM (/proc/<pid>/status), sampled every 5 ms", len(rss)),
	}, {
		what: "full action run ÷ `docker build` + `docker push`, " + shape, ratio: median(ratios), unit: "×",
		detail: fmt.Sprintf("%d pair(s); action %.1f s, docker CLI %.1f s", len(ratios), median(action), median(docker)),
	}}, nil
}

// measureRemote: the remote BuildKit builder with its mode=max registry
// cache: a cold run (buildkitd pruned, no cache in the registry) ÷ a warm
// re-run after a one-line change, on a buildkitd that was pruned again (a
// fresh worker of a fleet: all it has is the registry cache) and on the
// same warm buildkitd.
func (b *bench) measureRemote(ctx context.Context) ([]row, error) {
	bk, err := bkclient.New(ctx, b.bkHost,
		bkclient.WithServerConfig("", filepath.Join(b.bkCerts, "ca.pem")),
		bkclient.WithCredentials(filepath.Join(b.bkCerts, "cert.pem"), filepath.Join(b.bkCerts, "key.pem")))
	if err != nil {
		return nil, err
	}
	defer bk.Close()
	prune := func() error { return bk.Prune(ctx, nil, bkclient.PruneAll) }
	inputs := map[string]string{"builder": b.bkHost, "builder_certs": b.bkCerts}
	var fresh, same []float64
	var coldS, freshS, sameS []float64
	for i := 0; i < b.sz.pairs; i++ {
		// A new registry each time: the cold run finds no cache.
		s, err := b.newScenario(ctx, "remote", map[string]string{
			"dagster_cloud.yaml":   locationsYAML("svc"),
			"svc/busybox":          scenario.Busybox,
			"svc/requirements.txt": "dagster==1.9.0 # " + randomHex() + "\n",
			"svc/app.py":           "print('hello')\n",
			"svc/Dockerfile": "FROM scratch AS deps\nCOPY busybox /bin/busybox\nCOPY requirements.txt /requirements.txt\n" +
				fmt.Sprintf("RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep %d && /bin/busybox mkdir -p /deps && /bin/busybox dd if=/dev/urandom of=/deps/site-packages bs=1048576 count=%d 2>/dev/null\"]\n\n", b.sz.remoteSleep, b.sz.remoteMiB) +
				"FROM scratch\nCOPY --from=deps /deps /deps\nCOPY app.py /opt/dagster/app/app.py\n",
		})
		if err != nil {
			return nil, err
		}
		step := func(line string, pruneFirst bool) (float64, error) {
			if line != "" {
				if err := os.WriteFile(filepath.Join(s.Workspace, "svc", "app.py"), []byte(line), 0o644); err != nil {
					return 0, err
				}
				if err := s.CommitAll("One line"); err != nil {
					return 0, err
				}
			}
			if pruneFirst {
				if err := prune(); err != nil {
					return 0, fmt.Errorf("pruning buildkitd: %w", err)
				}
			}
			res, err := b.runAction(ctx, s, inputs)
			if err != nil {
				return 0, err
			}
			return res.Elapsed.Seconds(), nil
		}
		cold, err := step("", true)
		if err == nil {
			var f, w float64
			if f, err = step("print('hello, fleet')\n", true); err == nil {
				if w, err = step("print('hello, same worker')\n", false); err == nil {
					coldS, freshS, sameS = append(coldS, cold), append(freshS, f), append(sameS, w)
					fresh, same = append(fresh, f/cold), append(same, w/cold)
					b.logf("remote %d: cold %.1fs, warm (pruned worker) %.1fs, warm (same worker) %.1fs", i+1, cold, f, w)
				}
			}
		}
		s.Close()
		if err != nil {
			return nil, err
		}
	}
	detail := func(warm []float64, how string) string {
		return fmt.Sprintf("median of %d; cold %.1f s, warm %.1f s (medians); %s; the dependency stage (a RUN step that waits %d s and writes %d MiB) is not in the final image, so only mode=max caches it",
			len(warm), median(coldS), median(warm), how, b.sz.remoteSleep, b.sz.remoteMiB)
	}
	return []row{{
		what:  "remote BuildKit, warm re-run after a one-line change ÷ cold (fresh worker: buildkitd pruned, only the registry cache)",
		ratio: median(fresh), unit: "×",
		detail: detail(freshS, "buildkitd's cache pruned before each run"),
	}, {
		what:  "remote BuildKit, the same on the same warm worker",
		ratio: median(same), unit: "×",
		detail: detail(sameS, "buildkitd keeps its local cache"),
	}}, nil
}

// --- running things ----------------------------------------------------------

func (b *bench) newScenario(ctx context.Context, name string, files map[string]string) (*scenario.Scenario, error) {
	dir, err := os.MkdirTemp(b.work, name)
	if err != nil {
		return nil, err
	}
	// The emulated agent loads a location on the first poll: what is
	// measured is the action, not an agent's load time (minutes on a real
	// one, the same with any tool).
	return scenario.NewProjectWith(ctx, dir, files, scenario.Options{Dagster: []dagsteremu.Option{dagsteremu.WithLoadPolls(0)}})
}

// runAction runs the binary for a pull request (opened the first time,
// synchronize after) and fails unless it succeeded.
func (b *bench) runAction(ctx context.Context, s *scenario.Scenario, inputs map[string]string) (*scenario.Result, error) {
	event := "pull_request.synchronize.json"
	if b.runs[s] == 0 {
		event = "pull_request.opened.json"
	}
	b.runs[s]++
	path, err := s.Event(event, nil)
	if err != nil {
		return nil, err
	}
	res, err := s.Run(ctx, b.binary, "pull_request", path, inputs)
	if err != nil {
		return nil, err
	}
	b.saved++
	logPath := filepath.Join(b.work, "logs", fmt.Sprintf("%03d-%s.log", b.saved, filepath.Base(filepath.Dir(s.Workspace))))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err == nil {
		_ = os.WriteFile(logPath, []byte(fmt.Sprintf("elapsed %s, peak RSS %d KiB, exit %d\n%s\n--- stderr ---\n%s", res.Elapsed, res.MaxRSSKiB, res.ExitCode, res.Stdout, res.Stderr)), 0o644)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("the action exited %d:\n%s\n%s", res.ExitCode, tail(res.Stdout, 60), res.Stderr)
	}
	return res, nil
}

// login logs a docker CLI config in to the scenario's registry (not
// measured: the CLI keeps its login, as a runner after docker/login-action
// does).
func (b *bench) login(ctx context.Context, s *scenario.Scenario) (string, error) {
	cfg := filepath.Join(s.Dir, "cli-config")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, b.docker, "--config", cfg, "login", "-u", scenario.RegistryUser, "--password-stdin", s.Registry.Addr)
	cmd.Stdin = strings.NewReader(scenario.RegistryPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker login: %w\n%s", err, out)
	}
	return cfg, nil
}

// buildPush times `docker build` (BuildKit) and `docker push` of dir as ref.
func (b *bench) buildPush(ctx context.Context, cfg, dir, ref string) (time.Duration, error) {
	start := time.Now()
	if out, err := b.cli(ctx, cfg, "build", "-t", ref, dir); err != nil {
		return 0, fmt.Errorf("docker build: %w\n%s", err, tail(out, 40))
	}
	if out, err := b.cli(ctx, cfg, "push", ref); err != nil {
		return 0, fmt.Errorf("docker push: %w\n%s", err, tail(out, 40))
	}
	return time.Since(start), nil
}

func (b *bench) cli(ctx context.Context, cfg string, args ...string) (string, error) {
	if cfg != "" {
		args = append([]string{"--config", cfg}, args...)
	}
	cmd := exec.CommandContext(ctx, b.docker, args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// removeImages removes the daemon's images of the registry at addr.
func (b *bench) removeImages(ctx context.Context, addr string) {
	out, err := b.cli(ctx, "", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return
	}
	var refs []string
	for _, ref := range strings.Fields(out) {
		if strings.HasPrefix(ref, addr+"/") {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		_, _ = b.cli(ctx, "", append([]string{"rmi", "-f"}, refs...)...)
	}
}

func (b *bench) dockerVersion(format string) string {
	out, err := b.cli(context.Background(), "", "version", "--format", format)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(out)
}

func (b *bench) buildkitdVersion() string {
	if b.bkHost == "" {
		return "(none)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := bkclient.New(ctx, b.bkHost,
		bkclient.WithServerConfig("", filepath.Join(b.bkCerts, "ca.pem")),
		bkclient.WithCredentials(filepath.Join(b.bkCerts, "cert.pem"), filepath.Join(b.bkCerts, "key.pem")))
	if err != nil {
		return "?"
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		return "?"
	}
	return info.BuildkitVersion.Version
}

// --- contexts -----------------------------------------------------------------

// locationsYAML is a dagster_cloud.yaml with one location per name, built
// from ./<name> and pushed to acme/<name> of the scenario's registry.
func locationsYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("locations:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - location_name: %s\n    code_source:\n      module_name: %s.definitions\n    build:\n      directory: ./%s\n      registry: \"{{REGISTRY}}/acme/%s\"\n", n, n, n, n)
	}
	return b.String()
}

// writeContext (re)writes dir as a build context of total bytes of fresh
// random (incompressible) data in files files (under 100 directories when
// there are many), a definitions.py and a Dockerfile that copies it all.
func writeContext(dir string, total int64, files int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return err
	}
	rng := rand.NewChaCha8(seed)
	per := total / int64(files)
	buf := make([]byte, per)
	for i := 0; i < files; i++ {
		path := filepath.Join(dir, "data.bin")
		if files > 1 {
			path = filepath.Join(dir, "data", strconv.Itoa(i%100), fmt.Sprintf("f%05d.bin", i))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
		}
		_, _ = rng.Read(buf)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "definitions.py"), []byte("# "+hex.EncodeToString(seed[:8])+"\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY . /opt/dagster/app/\n"), 0o644)
}

func randomHex() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// --- small things -------------------------------------------------------------

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return fmt.Sprintf("%.0f GiB", float64(kib)/(1<<20))
		}
	}
	return "?"
}

func hostDesc() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS + "/" + runtime.GOARCH
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("PRETTY_NAME=")); ok {
			return strings.Trim(string(v), `"`) + " " + runtime.GOARCH
		}
	}
	return runtime.GOOS + "/" + runtime.GOARCH
}
