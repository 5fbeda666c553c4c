package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"
)

var errNoCertificate = errors.New("the server sent no certificate")

type hashMismatch struct{ got string }

func (e *hashMismatch) Error() string {
	return fmt.Sprintf("server certificate hash mismatch: got %s", e.got)
}

// streamCode is the WebTransport code of a peer's RESET_STREAM or STOP_SENDING behind err.
func streamCode(err error) (webtransport.StreamErrorCode, bool) {
	var se *webtransport.StreamError
	if errors.As(err, &se) && se.Remote {
		return se.ErrorCode, true
	}
	return 0, false
}

// closeFields describes how a session ended: code, reason and who closed it when it was a
// WebTransport close, the error text otherwise.
func closeFields(err error) map[string]any {
	var se *webtransport.SessionError
	if errors.As(err, &se) {
		return map[string]any{"code": se.ErrorCode, "reason": se.Message, "remote": se.Remote}
	}
	return map[string]any{"error": fmt.Sprint(err)}
}

// The HTTP/3 range WebTransport application codes map into (draft-ietf-webtrans-http3).
const (
	firstAppCode = 0x52e4a40fa8db
	lastAppCode  = 0x52e5ac983162
)

// wireStreamCode is the WebTransport code of a peer's STOP_SENDING or RESET_STREAM carried as a
// raw QUIC stream error (as a stream context's cause is).
func wireStreamCode(err error) (webtransport.StreamErrorCode, bool) {
	var qe *quic.StreamError
	if !errors.As(err, &qe) || !qe.Remote {
		return 0, false
	}
	h := uint64(qe.ErrorCode)
	if h < firstAppCode || h > lastAppCode || (h-0x21)%0x1f == 0 {
		return 0, false
	}
	shifted := h - firstAppCode
	return webtransport.StreamErrorCode(shifted - shifted/0x1f), true
}

// closeError is why sess ended, once it has: its session calls return it (its context carries
// no cause).
func closeError(sess *webtransport.Session) error {
	_, err := sess.AcceptStream(context.Background())
	return err
}
