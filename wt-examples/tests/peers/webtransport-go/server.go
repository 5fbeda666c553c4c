package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"
)

// The echo service of wt's `wt_examples::echo`, on webtransport-go:
//   - a bidirectional stream echoes what it reads and finishes when the peer finishes; a reset
//     of the peer's side is echoed as a reset with the same code, a STOP_SENDING as a
//     STOP_SENDING with the same code;
//   - a unidirectional stream is read to its end and the bytes go back on a new one;
//   - a datagram goes straight back; one too large to send back (the peer's limit is higher than
//     ours) goes back on a new unidirectional stream, and a "datagram-too-large" event says so;
//   - a bidirectional stream starting with "close <code> <reason>\n" closes the session so.
//
// Events: "listening" (addr, cert_hash), "session" (id, conn: a number per QUIC connection,
// path, protocol), "reset" / "stopped" (kind, code), "datagram-too-large" (len, max),
// "closed" (id, code, reason, remote, or error).

type connKey struct{}

func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "UDP address to listen on")
	config := flowFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cert, hash, err := selfSigned()
	if err != nil {
		return err
	}
	udp, err := net.ListenPacket("udp", *addr)
	if err != nil {
		return err
	}

	var conns atomic.Int64
	h3 := &http3.Server{
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
		QUICConfig: &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true},
		// Numbers each QUIC connection, so that the test can tell pooled sessions apart.
		ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, conns.Add(1))
		},
	}
	server := &webtransport.Server{
		H3:          h3,
		Config:      config,
		CheckOrigin: func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sess, err := server.Upgrade(w, r)
		if err != nil {
			emit("upgrade-failed", map[string]any{"path": r.URL.Path, "error": err.Error()})
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		emit("session", map[string]any{
			"conn":     r.Context().Value(connKey{}),
			"path":     r.URL.Path,
			"protocol": r.Proto,
		})
		go serveEcho(sess, r.URL.Path)
	})
	h3.Handler = mux

	emit("listening", map[string]any{"addr": udp.LocalAddr().String(), "cert_hash": hash})
	return server.Serve(udp)
}

// serveEcho runs the echo service on sess until it ends, then reports how it ended.
func serveEcho(sess *webtransport.Session, path string) {
	go func() {
		for {
			str, err := sess.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go echoBidi(sess, str)
		}
	}()
	go func() {
		for {
			str, err := sess.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			go echoUni(sess, str)
		}
	}()
	go echoDatagrams(sess)
	<-sess.Context().Done()
	fields := closeFields(closeError(sess))
	fields["path"] = path
	emit("closed", fields)
}

var closePrefix = []byte("close ")

// readCommand reads while what came so far may still be a "close <code> <reason>\n" line, and
// returns what it read.
func readCommand(str io.Reader) ([]byte, error) {
	var head []byte
	buf := make([]byte, 2048)
	for len(head) < 2048 && !bytes.Contains(head, []byte{'\n'}) {
		n := min(len(head), len(closePrefix))
		if !bytes.Equal(head[:n], closePrefix[:n]) {
			break
		}
		got, err := str.Read(buf[:2048-len(head)])
		head = append(head, buf[:got]...)
		if err != nil {
			return head, err
		}
	}
	return head, nil
}

// parseCommand turns "close <code> <reason>\n" into its code and reason.
func parseCommand(head []byte) (webtransport.SessionErrorCode, string, bool) {
	line, ok := bytes.CutPrefix(head, closePrefix)
	if !ok {
		return 0, "", false
	}
	line, _, ok = bytes.Cut(line, []byte{'\n'})
	if !ok {
		return 0, "", false
	}
	codeText, reason, _ := bytes.Cut(line, []byte{' '})
	code, err := strconv.ParseUint(string(codeText), 10, 32)
	if err != nil {
		return 0, "", false
	}
	return webtransport.SessionErrorCode(code), string(reason), true
}

func echoBidi(sess *webtransport.Session, str *webtransport.Stream) {
	// A STOP_SENDING from the peer ends the stream's context; answer it in kind whether or not
	// a write is under way.
	go func() {
		<-str.Context().Done()
		if code, ok := wireStreamCode(context.Cause(str.Context())); ok {
			emit("stopped", map[string]any{"kind": "bidi", "code": code})
			str.CancelRead(code)
		}
	}()
	head, err := readCommand(str)
	if code, reason, ok := parseCommand(head); ok {
		_ = sess.CloseWithError(code, reason)
		return
	}
	if len(head) > 0 {
		if _, werr := str.Write(head); werr != nil {
			return
		}
	}
	buf := make([]byte, 64*1024)
	for err == nil {
		var n int
		n, err = str.Read(buf)
		if _, werr := str.Write(buf[:n]); werr != nil {
			return // a STOP_SENDING is answered above
		}
	}
	if code, ok := streamCode(err); ok {
		emit("reset", map[string]any{"kind": "bidi", "code": code})
		str.CancelWrite(code)
		return
	}
	if errors.Is(err, io.EOF) {
		_ = str.Close()
	}
}

func echoUni(sess *webtransport.Session, str *webtransport.ReceiveStream) {
	data, err := io.ReadAll(str)
	if code, ok := streamCode(err); ok {
		emit("reset", map[string]any{"kind": "uni", "code": code})
		return
	}
	if err != nil {
		return
	}
	sendBack(sess, data)
}

// sendBack sends data on a new unidirectional stream.
func sendBack(sess *webtransport.Session, data []byte) {
	out, err := sess.OpenUniStreamSync(context.Background())
	if err != nil {
		return
	}
	if _, err := out.Write(data); err == nil {
		_ = out.Close()
	}
}

func echoDatagrams(sess *webtransport.Session) {
	for {
		data, err := sess.ReceiveDatagram(context.Background())
		if err != nil {
			return
		}
		err = sess.SendDatagram(data)
		var tooLarge *quic.DatagramTooLargeError
		if errors.As(err, &tooLarge) {
			// Too large to go back as a datagram (the peer's path allows more than ours):
			// it goes back on a unidirectional stream instead, for a byte-for-byte check.
			emit("datagram-too-large", map[string]any{"len": len(data), "max": tooLarge.MaxDatagramPayloadSize})
			go sendBack(sess, data)
		} else if err != nil {
			emit("datagram-not-echoed", map[string]any{"len": len(data), "error": err.Error()})
		}
	}
}
