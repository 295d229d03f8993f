// Package text holds the one rule for cutting a message short: on a character boundary, since half a
// UTF-8 sequence reaches its reader as U+FFFD.
package text

import (
	"fmt"
	"unicode/utf8"
)

// Prefix is s's first n bytes or fewer, ending on a character boundary.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Cut is s in at most n bytes: whole, or its first bytes up to a character boundary and a note of how many
// bytes were left out, so whoever reads it knows it was cut and by how much. n leaves room for the note
// (about 25 bytes).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// The count of what is left out never has more digits than len(s).
	head := Prefix(s, n-len(note(len(s))))
	return head + note(len(s)-len(head))
}

func note(more int) string { return fmt.Sprintf(" … (%d more bytes)", more) }
