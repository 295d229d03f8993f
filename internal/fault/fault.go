package fault

import (
	"errors"
	"fmt"
)

// Kind says how a caller should treat a failure.
type Kind int

const (
	// Unknown is any error that carries no Kind; it is treated as Transient.
	Unknown Kind = iota
	// Invalid means the request itself is wrong: fix it, a retry cannot help.
	Invalid
	// NotFound means the workflow, node or pod the request names does not exist.
	NotFound
	// Precondition means the step exists but is in no state to release: not paused and not about to pause,
	// finished, or its nodes cannot be read.
	Precondition
	// Transient means the API server, the exec transport or the pod is not ready yet: retry.
	Transient
	// Denied means the request is outside what this server may act on (its namespace allow-list).
	Denied
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "Invalid"
	case NotFound:
		return "NotFound"
	case Precondition:
		return "Precondition"
	case Transient:
		return "Transient"
	case Denied:
		return "Denied"
	case Unknown:
	}
	// Out of range is treated as Unknown everywhere.
	return "Unknown"
}

// Final reports whether a failure of this kind stays the same on retry.
func (k Kind) Final() bool { return k == Invalid || k == NotFound || k == Precondition || k == Denied }

// Error is an error with a Kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func newf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// Invalidf returns an Invalid error; format and args follow fmt.Errorf, %w included.
func Invalidf(format string, args ...any) error { return newf(Invalid, format, args...) }

// NotFoundf returns a NotFound error.
func NotFoundf(format string, args ...any) error { return newf(NotFound, format, args...) }

// Preconditionf returns a Precondition error.
func Preconditionf(format string, args ...any) error { return newf(Precondition, format, args...) }

// Deniedf returns a Denied error.
func Deniedf(format string, args ...any) error { return newf(Denied, format, args...) }

// Transientf returns a Transient error.
func Transientf(format string, args ...any) error { return newf(Transient, format, args...) }

// KindOf returns the Kind of the outermost classified error in err's chain, Unknown if there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unknown
}
