package jobs

// CodePermissionDenied is the code of a request NATS refused: the user's
// permissions do not allow the subject. The gantry client reports it; the
// server never sees such a request.
const CodePermissionDenied = "permission_denied"

// Sentinels for errors.Is, one per code: errors.Is(err, ErrInvalidArgument)
// holds for every API error with that code, whatever its message.
var (
	ErrInvalidArgument    error = &Error{Code: CodeInvalidArgument, Message: "invalid argument"}
	ErrAlreadyExists      error = &Error{Code: CodeAlreadyExists, Message: "already exists"}
	ErrFailedPrecondition error = &Error{Code: CodeFailedPrecond, Message: "failed precondition"}
	ErrUnavailable        error = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrInternal           error = &Error{Code: CodeInternal, Message: "internal error"}
	ErrPermissionDenied   error = &Error{Code: CodePermissionDenied, Message: "permission denied"}
)

// Is reports whether target is the sentinel of e's code (ErrNotFound for
// not_found, and so on), so that callers test codes with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || e == nil {
		return false
	}
	switch t {
	case ErrNotFound, ErrInvalidArgument, ErrAlreadyExists, ErrFailedPrecondition, ErrUnavailable,
		ErrInternal, ErrPermissionDenied:
		return e.Code == t.Code
	}
	return false
}
