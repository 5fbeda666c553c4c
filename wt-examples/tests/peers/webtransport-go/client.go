package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"
)

// The client checks, run against wt's echo server (`wt_examples::echo`) on every session of one
// pooled QUIC connection. Each check prints a "check" event (session, name, ok, detail); the
// Rust test requires every one of them to pass and checks our server's side itself.
//
// Payloads are seeded by session, so that data crossing from one session to another shows as
// a mismatch.

func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	rawURL := fs.String("url", "", "WebTransport URL of the echo server")
	certHash := fs.String("cert-hash", "", "hex SHA-256 of the server's certificate")
	sessions := fs.Int("sessions", 1, "sessions to open on one QUIC connection")
	bidiLen := fs.Int("bidi-len", 256*1024, "bytes sent on the bidirectional echo stream")
	closeCode := fs.Uint("close-code", 7, "code of the close this client sends on the last session")
	closeReason := fs.String("close-reason", "bye from webtransport-go", "reason of that close")
	config := flowFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tlsConf := pinnedHash(*certHash)
	tlsConf.NextProtos = []string{"h3"}
	qconn, err := quic.DialAddr(ctx, u.Host, tlsConf,
		&quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true})
	if err != nil {
		return fmt.Errorf("QUIC handshake: %w", err)
	}
	defer qconn.CloseWithError(0, "")
	tr := &webtransport.Transport{Config: config}
	defer tr.Close()
	conn, err := tr.NewClientConn(qconn)
	if err != nil {
		return err
	}

	opened := make([]*webtransport.Session, *sessions)
	for i := range opened {
		rsp, sess, err := conn.Dial(ctx, *rawURL, nil)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		emit("connected", map[string]any{"session": i, "status": rsp.StatusCode})
		opened[i] = sess
	}
	// The sessions run their checks at the same time, so their streams interleave on the
	// connection.
	var wg sync.WaitGroup
	for i, sess := range opened {
		wg.Go(func() { runChecks(ctx, i, sess, *bidiLen) })
	}
	wg.Wait()

	last := opened[len(opened)-1]
	check(len(opened)-1, "server-close", func() (string, error) {
		return serverClose(ctx, last, 3007, "closed by wt ✓")
	})
	for i, sess := range opened[:len(opened)-1] {
		_ = sess.CloseWithError(webtransport.SessionErrorCode(*closeCode), *closeReason)
		emit("closed-by-client", map[string]any{"session": i})
	}
	emit("done", nil)
	return nil
}

// check runs one check and reports it.
func check(session int, name string, run func() (string, error)) {
	detail, err := run()
	fields := map[string]any{"session": session, "name": name, "ok": err == nil, "detail": detail}
	if err != nil {
		fields["detail"] = err.Error()
	}
	emit("check", fields)
}

func runChecks(ctx context.Context, i int, sess *webtransport.Session, bidiLen int) {
	seed := uint32(100 * (i + 1))
	check(i, "bidi-echo", func() (string, error) { return bidiEcho(ctx, sess, pattern(bidiLen, seed)) })
	check(i, "uni-echo", func() (string, error) { return uniEcho(ctx, sess, pattern(64*1024, seed+1)) })
	check(i, "streams-100", func() (string, error) { return manyStreams(ctx, sess, 100, seed+2) })
	check(i, "datagram-max", func() (string, error) { return datagramMax(ctx, sess, seed+3) })
	for _, code := range []webtransport.StreamErrorCode{0, 1, 0xffffffff} {
		check(i, fmt.Sprintf("reset-%d", code), func() (string, error) { return resetEcho(ctx, sess, code) })
		check(i, fmt.Sprintf("stop-%d", code), func() (string, error) { return stopEcho(ctx, sess, code) })
	}
}

// pattern is wt's test pattern (xorshift32), so mismatches look alike in both languages.
func pattern(n int, seed uint32) []byte {
	x := uint32(0x9e3779b9) ^ seed
	out := make([]byte, n)
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x >> 24)
	}
	return out
}

func same(what string, got, want []byte) (string, error) {
	if bytes.Equal(got, want) {
		return fmt.Sprintf("%d bytes intact", len(got)), nil
	}
	at := 0
	for at < min(len(got), len(want)) && got[at] == want[at] {
		at++
	}
	return "", fmt.Errorf("%s: got %d bytes, expected %d; first difference at byte %d", what, len(got), len(want), at)
}

func bidiEcho(ctx context.Context, sess *webtransport.Session, data []byte) (string, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	errc := make(chan error, 1)
	go func() {
		_, err := str.Write(data)
		if err == nil {
			err = str.Close()
		}
		errc <- err
	}()
	got, err := io.ReadAll(str)
	if err != nil {
		return "", err
	}
	if err := <-errc; err != nil {
		return "", err
	}
	return same("bidi echo", got, data)
}

func uniEcho(ctx context.Context, sess *webtransport.Session, data []byte) (string, error) {
	str, err := sess.OpenUniStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := str.Write(data); err != nil {
		return "", err
	}
	if err := str.Close(); err != nil {
		return "", err
	}
	back, err := sess.AcceptUniStream(ctx)
	if err != nil {
		return "", err
	}
	got, err := io.ReadAll(back)
	if err != nil {
		return "", err
	}
	return same("uni echo", got, data)
}

// manyStreams echoes n bidirectional streams at once, each with its own payload.
func manyStreams(ctx context.Context, sess *webtransport.Session, n int, seed uint32) (string, error) {
	errs := make(chan error, n)
	for k := range n {
		go func() {
			_, err := bidiEcho(ctx, sess, pattern(1000+k, seed+uint32(k)))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d streams echoed intact", n), nil
}

// datagramMax finds the largest datagram webtransport-go will send (it says so when one is too
// large) and has the server echo one of that size.
func datagramMax(ctx context.Context, sess *webtransport.Session, seed uint32) (string, error) {
	size := 1500
	for ; size > 0; size-- {
		err := sess.SendDatagram(make([]byte, size))
		var tooLarge *quic.DatagramTooLargeError
		if !errors.As(err, &tooLarge) {
			break
		}
	}
	data := pattern(size, seed)
	for attempt := 0; attempt < 10; attempt++ {
		if err := sess.SendDatagram(data); err != nil {
			return "", err
		}
		wait, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		got, err := sess.ReceiveDatagram(wait)
		cancel()
		if err == nil && len(got) == size && bytes.Equal(got, data) {
			return fmt.Sprintf("%d-byte datagram echoed intact (webtransport-go's largest)", size), nil
		}
	}
	return "", fmt.Errorf("no echo of a %d-byte datagram in 10 attempts", size)
}

// resetEcho resets a stream with code after some data; the echo server resets its side with
// the same code.
func resetEcho(ctx context.Context, sess *webtransport.Session, code webtransport.StreamErrorCode) (string, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := str.Write([]byte("some data, then a reset")); err != nil {
		return "", err
	}
	str.CancelWrite(code)
	_, err = io.ReadAll(str)
	if got, ok := streamCode(err); ok && got == code {
		return fmt.Sprintf("the echo's reset came back with code %d", got), nil
	}
	return "", fmt.Errorf("expected a reset with code %d, got %v", code, err)
}

// stopEcho stops reading a stream with code; the echo server stops its side with the same code,
// which ends our stream's send side.
func stopEcho(ctx context.Context, sess *webtransport.Session, code webtransport.StreamErrorCode) (string, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := str.Write([]byte("some data, then a stop")); err != nil {
		return "", err
	}
	str.CancelRead(code)
	select {
	case <-str.Context().Done():
	case <-ctx.Done():
		return "", errors.New("no STOP_SENDING came back")
	}
	if got, ok := wireStreamCode(context.Cause(str.Context())); ok && got == code {
		return fmt.Sprintf("the echo's STOP_SENDING came back with code %d", got), nil
	}
	return "", fmt.Errorf("expected a STOP_SENDING with code %d, got %v", code, context.Cause(str.Context()))
}

// serverClose asks the echo server to close the session and checks the code and reason.
func serverClose(ctx context.Context, sess *webtransport.Session, code webtransport.SessionErrorCode, reason string) (string, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(str, "close %d %s\n", code, reason); err != nil {
		return "", err
	}
	select {
	case <-sess.Context().Done():
	case <-ctx.Done():
		return "", errors.New("the server did not close the session")
	}
	var se *webtransport.SessionError
	err = closeError(sess)
	if errors.As(err, &se) && se.Remote && se.ErrorCode == code && se.Message == reason {
		return fmt.Sprintf("closed by the server with code %d, reason %q", code, reason), nil
	}
	return "", fmt.Errorf("expected the server's close %d %q, got %v", code, reason, err)
}
