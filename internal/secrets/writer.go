package secrets

import (
	"bytes"
	"io"
	"sync"
)

// maxPending bounds how much of a line without a newline is held back
// before it is written anyway (a progress bar that only ever sends \r).
const maxPending = 256 << 10

// Writer redacts the secrets of a Set from text on its way to another
// writer. It works line by line, so a secret split across two Write calls
// is still found; Flush writes a final partial line.
type Writer struct {
	set     *Set
	mu      sync.Mutex
	w       io.Writer
	pending []byte
}

// Writer returns a Writer that redacts s's secrets from what it passes to
// w. Secrets added to s later are redacted from later lines.
func (s *Set) Writer(w io.Writer) *Writer { return &Writer{set: s, w: w} }

// Write implements io.Writer. It reports len(p) written once p is taken in,
// even when part of it is held back until its line ends.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	end := bytes.LastIndexByte(w.pending, '\n') + 1
	if end == 0 && len(w.pending) > maxPending {
		end = len(w.pending)
	}
	if end == 0 {
		return len(p), nil
	}
	out := w.set.Redact(string(w.pending[:end]))
	w.pending = append(w.pending[:0], w.pending[end:]...)
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back of an unfinished line.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	out := w.set.Redact(string(w.pending))
	w.pending = w.pending[:0]
	_, err := io.WriteString(w.w, out)
	return err
}
