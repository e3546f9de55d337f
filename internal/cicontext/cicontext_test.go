package cicontext

import "testing"

// headSHA is a commit that the test repositories do not hold.
const headSHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"

func TestTitle(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]string{
		"Add assets":                                    "Add assets",
		"Add assets\n\nLonger body.":                    "Add assets",
		"Add assets\nand sensors\n\nBody":               "Add assets and sensors",
		"Fix the loader  \r\n  for windows\r\n\r\nBody": "Fix the loader   for windows",
		"\n\n  \nSubject after blank lines\n\nBody":     "Subject after blank lines",
		"Subject\n \t \nBody":                           "Subject",
		"  Indented subject":                            "Indented subject",
		"":                                              "",
		"Merge pull request #7 from o/b\n\nFeature":     "Merge pull request #7 from o/b",
	} {
		if got := (Commit{Message: msg}).Title(); got != want {
			t.Errorf("Title(%q) = %q, want %q", msg, got, want)
		}
	}
}
