package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
)

// consumeDurable takes durable submissions from gantry.submit. A message
// whose Nats-Msg-Id was seen makes no second run, even after JetStream's
// duplicate window: the id becomes the run's idempotency key. When the
// publisher names a Gantry-Reply-To subject, the run (or the error) is
// published there, as the reply of gantry.api.runs.submit would be.
//
// If the server dies after creating the run and before acknowledging the
// message, the message comes back and the idempotency key finds the run:
// still one run, and the reply is sent again, as to any submission that
// found its run by its key: without the run's spec (submitReply). A message with neither key
// nor id is keyed by its stream sequence and time.
func (s *Server) consumeDurable(ctx context.Context) error {
	return s.q.ConsumeSubmissionMsgs(ctx, func(m queue.Submission) error { return s.takeSubmission(ctx, m) })
}

// takeSubmission makes the run of one durable submission; an error leaves
// the message to be taken again.
func (s *Server) takeSubmission(ctx context.Context, m queue.Submission) error {
	req, warnings, err := decodeSubmit(m.Data) // api.go
	if err != nil {
		s.cfg.log.Warn().Err(err).Str("msgId", m.MsgID).Msg("drop malformed submission")
		s.replySubmission(m, nil, jobs.Invalid("malformed submission: "+err.Error()))
		return nil
	}
	if err := fromOutside(&req); err != nil {
		s.cfg.log.Warn().Err(err).Str("msgId", m.MsgID).Msg("drop invalid submission")
		s.replySubmission(m, nil, err)
		return nil
	}
	switch {
	case req.IdempotencyKey != "":
	case m.MsgID != "":
		req.IdempotencyKey = "msgid:" + m.MsgID
	case m.Seq != 0:
		// No key: the message's own identity, so that a delivery
		// after a crash between the run and the ack finds the run.
		req.IdempotencyKey = fmt.Sprintf("submit:%d:%d", m.Seq, m.Stored.UnixNano())
	}
	r, created, err := s.submit(ctx, &req)
	if err != nil && !permanent(err) {
		return err // taken again in a second
	}
	if err != nil {
		s.cfg.log.Warn().Err(err).Str("msgId", m.MsgID).Msg("drop invalid submission")
		s.replySubmission(m, nil, err)
		return nil
	}
	s.cfg.log.Debug().Str("run", r.RunID).Msg("durable submission")
	if len(warnings) > 0 {
		// Its submitter may hear of them only here, without a reply subject.
		s.cfg.log.Warn().Str("run", r.RunID).Str("msgId", m.MsgID).Strs("warnings", warnings).Msg("durable submission has fields not read")
	}
	// api.go: a run found by its key comes without its spec
	s.replySubmission(m, withWarnings(submitReply(r, created), warnings), nil)
	return nil
}

// permanent reports whether submitting again cannot help.
func permanent(err error) bool {
	switch jobs.ErrorCode(err) {
	case jobs.CodeInvalidArgument, jobs.CodeNotFound, jobs.CodeFailedPrecond, jobs.CodeAlreadyExists:
		return true
	}
	return false
}

// replySubmission publishes a durable submission's outcome on its
// Gantry-Reply-To subject. Subjects of gantry's own (gantry.>) and of
// NATS's ($JS, $SYS, ...) are refused: the server may publish where
// submitters may not, and must not do it for them.
func (s *Server) replySubmission(m queue.Submission, reply any, err error) {
	to := m.ReplyTo
	if to == "" {
		return
	}
	if !replySubjectOK(to) {
		s.cfg.log.Warn().Str("replyTo", to).Msg("ignore the reply subject of a submission: not allowed")
		return
	}
	msg := replyMsg(reply, err) // api.go: as the API answers
	msg.Subject = to
	if m.MsgID != "" {
		if msg.Header == nil {
			msg.Header = nats.Header{}
		}
		msg.Header.Set(nats.MsgIdHdr, m.MsgID)
	}
	if err := s.q.Conn().PublishMsg(msg); err != nil {
		s.cfg.log.Warn().Err(err).Str("replyTo", to).Msg("reply to a submission")
	}
}

func replySubjectOK(subject string) bool {
	if subject == "" || strings.ContainsAny(subject, " \t\r\n*>") || strings.HasPrefix(subject, "$") ||
		strings.HasPrefix(subject, "gantry.") || strings.HasPrefix(subject, ".") || strings.HasSuffix(subject, ".") ||
		strings.Contains(subject, "..") {
		return false
	}
	return true
}
