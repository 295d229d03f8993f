package fault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := map[string]struct {
		err  error
		want Kind
	}{
		"nil is Unknown":                        {err: nil, want: Unknown},
		"plain error is Unknown":                {err: errors.New("boom"), want: Unknown},
		"plain wrapped error is Unknown":        {err: fmt.Errorf("get: %w", context.DeadlineExceeded), want: Unknown},
		"Invalid constructor":                   {err: Invalidf("bad %s", "x"), want: Invalid},
		"NotFound constructor":                  {err: NotFoundf("no %s", "wf"), want: NotFound},
		"Precondition constructor":              {err: Preconditionf("not paused"), want: Precondition},
		"Transient constructor":                 {err: Transientf("later"), want: Transient},
		"Denied constructor":                    {err: Deniedf("ns %s", "kube-system"), want: Denied},
		"literal Error keeps its Kind":          {err: &Error{Kind: Denied, Err: errors.New("no")}, want: Denied},
		"classified error under one %w":         {err: fmt.Errorf("step: %w", NotFoundf("pod gone")), want: NotFound},
		"classified error under several %w":     {err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", fmt.Errorf("c: %w", Preconditionf("finished")))), want: Precondition},
		"outermost classified wins over inner":  {err: Transientf("retry: %w", NotFoundf("pod gone")), want: Transient},
		"outermost wins through plain wrappers": {err: fmt.Errorf("x: %w", Invalidf("bad: %w", fmt.Errorf("y: %w", Transientf("api")))), want: Invalid},
		"classified inside errors.Join":         {err: errors.Join(errors.New("plain"), Deniedf("no")), want: Denied},
		"first classified of errors.Join wins":  {err: errors.Join(Preconditionf("p"), NotFoundf("n")), want: Precondition},
		"classified under a %v is lost":         {err: fmt.Errorf("x: %v", NotFoundf("gone")), want: Unknown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := KindOf(tc.err); got != tc.want {
				t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestKindFinal(t *testing.T) {
	tests := map[string]struct {
		kind Kind
		want bool
	}{
		"Unknown is retried":      {kind: Unknown, want: false},
		"Invalid is final":        {kind: Invalid, want: true},
		"NotFound is final":       {kind: NotFound, want: true},
		"Precondition is final":   {kind: Precondition, want: true},
		"Transient is retried":    {kind: Transient, want: false},
		"Denied is final":         {kind: Denied, want: true},
		"out of range is retried": {kind: Kind(42), want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.kind.Final(); got != tc.want {
				t.Errorf("%v.Final() = %v, want %v", tc.kind, got, tc.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := map[string]struct {
		kind Kind
		want string
	}{
		"Unknown":                 {kind: Unknown, want: "Unknown"},
		"Invalid":                 {kind: Invalid, want: "Invalid"},
		"NotFound":                {kind: NotFound, want: "NotFound"},
		"Precondition":            {kind: Precondition, want: "Precondition"},
		"Transient":               {kind: Transient, want: "Transient"},
		"Denied":                  {kind: Denied, want: "Denied"},
		"out of range is Unknown": {kind: Kind(42), want: "Unknown"},
		"negative is Unknown":     {kind: Kind(-1), want: "Unknown"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.kind.String(); got != tc.want {
				t.Errorf("Kind(%d).String() = %q, want %q", int(tc.kind), got, tc.want)
			}
			if got := fmt.Sprint(tc.kind); got != tc.want {
				t.Errorf("fmt.Sprint(Kind(%d)) = %q, want %q (Stringer)", int(tc.kind), got, tc.want)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	cause := fs.ErrNotExist
	tests := map[string]struct {
		new     func(string, ...any) error
		kind    Kind
		format  string
		args    []any
		message string
		is      error // errors.Is target reachable through Unwrap, nil for none
	}{
		"Invalidf formats like fmt.Errorf": {new: Invalidf, kind: Invalid, format: "field %q is %d long", args: []any{"name", 300}, message: `field "name" is 300 long`},
		"NotFoundf wraps its %w cause":     {new: NotFoundf, kind: NotFound, format: "pod %s: %w", args: []any{"p", cause}, message: "pod p: file does not exist", is: cause},
		"Preconditionf wraps its cause":    {new: Preconditionf, kind: Precondition, format: "nodes: %w", args: []any{context.Canceled}, message: "nodes: context canceled", is: context.Canceled},
		"Transientf wraps its cause":       {new: Transientf, kind: Transient, format: "exec: %w", args: []any{context.DeadlineExceeded}, message: "exec: context deadline exceeded", is: context.DeadlineExceeded},
		"Deniedf without args":             {new: Deniedf, kind: Denied, format: "namespace not served", message: "namespace not served"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.new(tc.format, tc.args...)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *fault.Error", err)
			}
			if fe.Kind != tc.kind {
				t.Errorf("Kind = %v, want %v", fe.Kind, tc.kind)
			}
			if err.Error() != tc.message {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.message)
			}
			if fe.Unwrap() != fe.Err || fe.Err == nil { //nolint:errorlint // Unwrap must return the very error held, not one that matches it
				t.Errorf("Unwrap() = %v, want the wrapped error %v", fe.Unwrap(), fe.Err)
			}
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Errorf("errors.Is(%v, %v) = false, want true through Unwrap", err, tc.is)
				}
				// Wrapped again, still classified and still reaching the cause.
				outer := fmt.Errorf("outer: %w", err)
				if !errors.Is(outer, tc.is) || KindOf(outer) != tc.kind {
					t.Errorf("wrapped again: Is=%v Kind=%v, want true, %v", errors.Is(outer, tc.is), KindOf(outer), tc.kind)
				}
			} else if errors.Unwrap(fe.Err) != nil {
				t.Errorf("no %%w given, but the inner error wraps %v", errors.Unwrap(fe.Err))
			}
		})
	}
}

func TestErrorMethods(t *testing.T) {
	inner := errors.New("inner")
	tests := map[string]struct {
		err     *Error
		message string
	}{
		"Error is the wrapped message":     {err: &Error{Kind: Transient, Err: inner}, message: "inner"},
		"Kind adds nothing to the message": {err: &Error{Kind: Denied, Err: fmt.Errorf("ns x: %w", inner)}, message: "ns x: inner"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.message {
				t.Errorf("Error() = %q, want %q", got, tc.message)
			}
			if !errors.Is(tc.err, inner) {
				t.Errorf("errors.Is(err, inner) = false, want true")
			}
		})
	}
}
