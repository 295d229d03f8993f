package resume

import (
	"slices"
	"testing"
)

// The server's "*" is the API's "" (every namespace) wherever it lists; other names are listed as they are.
func TestListed(t *testing.T) {
	if got := Listed([]string{"a", AllNamespaces, "b"}); !slices.Equal(got, []string{"a", "", "b"}) {
		t.Errorf("Listed = %q, want a, every namespace, b", got)
	}
	if got := Listed(nil); len(got) != 0 {
		t.Errorf("Listed(nil) = %q, want none", got)
	}
}
