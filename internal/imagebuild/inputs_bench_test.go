package imagebuild

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkInputsDigestLargeContext measures InputsDigest on a generated context of 20,000
// files and 1 GiB in all (DBD_BENCH_CONTEXT_MIB sets another size), beside reading the context
// tar the builder sends ("tar"), which is the floor: both read every byte. Besides the time it
// reports the peak RSS of the process (getrusage; generating the files uses a 1 MiB buffer) and
// the peak Go heap while the digest runs. It never fails on a number.
//
//	go test -run '^$' -bench InputsDigestLargeContext -benchtime 1x ./internal/imagebuild/
func BenchmarkInputsDigestLargeContext(b *testing.B) {
	mib := 1024
	if v := os.Getenv("DBD_BENCH_CONTEXT_MIB"); v != "" {
		var err error
		if mib, err = strconv.Atoi(v); err != nil {
			b.Fatalf("DBD_BENCH_CONTEXT_MIB=%q: %v", v, err)
		}
	}
	dir := b.TempDir()
	start := time.Now()
	total := generateLargeContext(b, dir, 20000, int64(mib)<<20)
	b.Logf("generated %d files, %d MiB in %s", 20000, total>>20, time.Since(start).Round(time.Millisecond))
	fake := &fakeInspector{digests: map[string]string{"docker.io/library/python:3.12-slim": fakeDigest("python")}}
	s := Spec{ContextDir: dir}

	b.Run("tar", func(b *testing.B) {
		bc, err := prepareSpecContext(s)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(total)
		for b.Loop() {
			rc, err := bc.tar()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
	b.Run("digest", func(b *testing.B) {
		b.SetBytes(total)
		stop := peakHeapSampler()
		for b.Loop() {
			in, err := InputsDigest(context.Background(), fake, s)
			if err != nil {
				b.Fatal(err)
			}
			if in.Context.Files != 20001 { // and the Dockerfile
				b.Fatalf("digested %d files", in.Context.Files)
			}
		}
		peakHeap := stop()
		b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(processMaxRSS())/(1<<20), "peak-RSS-MiB")
	})
}

// generateLargeContext writes n files of total bytes under dir in 200 directories: ten large files
// take half the bytes, the others share the rest. Contents are pseudo-random (incompressible).
func generateLargeContext(b *testing.B, dir string, n int, total int64) int64 {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM python:3.12-slim\nCOPY . /app\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	const large = 10
	largeSize := total / 2 / large
	smallSize := (total - largeSize*large) / int64(n-large)
	var written int64
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("pkg%03d", i%200))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		size := smallSize
		if i < large {
			size = largeSize
		}
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("file%05d.dat", i)))
		if err != nil {
			b.Fatal(err)
		}
		for left := size; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			_, _ = rng.Read(chunk)
			if _, err := f.Write(chunk); err != nil {
				b.Fatal(err)
			}
			left -= int64(len(chunk))
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		written += size
	}
	return written
}

// peakHeapSampler samples the Go heap in use every 10 ms until the returned func is called, which
// returns the peak.
func peakHeapSampler() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// processMaxRSS is the peak resident set size of this process, in bytes.
func processMaxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}
