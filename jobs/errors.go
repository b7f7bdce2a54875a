package jobs

import "errors"

// Error codes carried by API errors.
const (
	CodeInvalidArgument = "invalid_argument"
	CodeNotFound        = "not_found"
	CodeAlreadyExists   = "already_exists"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
	CodeFailedPrecond   = "failed_precondition"
)

// Error is an API error: a stable code and a message for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf-free constructors keep call sites short.

// NotFound says a named object does not exist.
func NotFound(msg string) error { return &Error{Code: CodeNotFound, Message: msg} }

// Invalid says the request is wrong.
func Invalid(msg string) error { return &Error{Code: CodeInvalidArgument, Message: msg} }

// ErrorCode returns the API code of err: its own if it is an *Error,
// invalid_argument for a validation problem, internal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrNotFound) {
		return CodeNotFound
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return CodeInvalidArgument
	}
	return CodeInternal
}

// ErrNotFound is wrapped by lookups of objects that do not exist, as in
// fmt.Errorf("run %s: %w", id, ErrNotFound); its API code is not_found.
var ErrNotFound error = &Error{Code: CodeNotFound, Message: "not found"}
