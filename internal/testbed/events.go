package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// EventFixture reads the GitHub event payload testdata/events/<name> of the repository,
// applies edit (when not nil) to its JSON, and returns the edited payload.
func EventFixture(name string, edit func(ev map[string]any)) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "testdata", "events", name))
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("event fixture %s: %w", name, err)
	}
	if edit != nil {
		edit(ev)
	}
	return json.MarshalIndent(ev, "", "  ")
}
