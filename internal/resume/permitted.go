package resume

import (
	"github.com/argocontroller/resume-trigger/internal/fault"
)

// Rights tells whether the server holds, in a namespace, every right a release there needs, as its own
// access reviews found (access.Checker is one).
type Rights interface {
	// Permitted returns an error saying what is missing and how to grant it, or nil. canRecord says
	// whether the server may still read a Resume there and write its status.
	Permitted(namespace string) (canRecord bool, err error)
}

// ReasonNotPermitted is the reason of a Resume in a namespace where the server lacks a right it needs.
const ReasonNotPermitted = "NotPermitted"

// notPermittedError is a request refused because the server lacks rights in its namespace: final, since
// the binding that is missing is an operator's act, and a Resume waiting for it would only end in a 403
// much later (or its deadline) without saying which binding to create.
type notPermittedError struct{ err error }

func (e *notPermittedError) Error() string { return e.err.Error() }
func (e *notPermittedError) Unwrap() error { return e.err }

// permitted asks Config.Rights about namespace; the error is Denied and carries ReasonNotPermitted.
func (s *Service) permitted(namespace string) (canRecord bool, err error) {
	if s.cfg.Rights == nil {
		return true, nil
	}
	canRecord, err = s.cfg.Rights.Permitted(namespace)
	if err != nil {
		return canRecord, &fault.Error{Kind: fault.Denied, Err: &notPermittedError{err: err}}
	}
	return true, nil
}
