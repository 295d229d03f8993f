package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "h"}, {"héllo", 3, "hé"}, {"é", 0, ""}, {"abc", -1, ""},
	} {
		if got := Prefix(tc.s, tc.n); got != tc.want {
			t.Errorf("Prefix(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{strings.Repeat("a", 40), 30, "aaaaaaaaaa … (30 more bytes)"},
		// The cut falls inside "é" (2 bytes): the whole character goes, and the count says so.
		{"aaaaaaaaaé" + strings.Repeat("b", 30), 30, "aaaaaaaaa … (32 more bytes)"},
	} {
		got := Cut(tc.s, tc.n)
		if got != tc.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
		if len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("Cut(%q, %d) = %q: %d bytes, valid UTF-8 %v", tc.s, tc.n, got, len(got), utf8.ValidString(got))
		}
	}
}
