// Package text holds the one rule for cutting a message short: on a character boundary, since half a
// UTF-8 sequence reaches its reader as U+FFFD.
package text

import "unicode/utf8"

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
