// Command webtransport-go-peer is the webtransport-go side of wt's interop tests
// (wt-examples/tests/interop_webtransport_go.rs). It is built by the test with `go build` and
// run as a child process:
//
//	server [flags]            an echo server (see server.go); prints a "listening" event
//	client --url U --cert-hash H [flags]
//	                          runs the client checks (see client.go) against an echo server
//
// Every line it prints on stdout is one JSON object with an "event" field, which the Rust test
// parses; diagnostics go to stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/quic-go/webtransport-go"
)

// emit prints one event line; safe from any goroutine.
var emitMx sync.Mutex

func emit(event string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = event
	line, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	emitMx.Lock()
	defer emitMx.Unlock()
	fmt.Println(string(line))
}

// flowFlags are the WebTransport flow-control windows this side grants its peer (zero: the
// setting is not sent, and webtransport-go then runs without flow control).
func flowFlags(fs *flag.FlagSet) *webtransport.Config {
	c := &webtransport.Config{}
	fs.Int64Var(&c.MaxIncomingStreams, "max-streams", 0, "bidirectional streams the peer may open (0: no flow control)")
	fs.Int64Var(&c.MaxIncomingUniStreams, "max-uni-streams", 0, "unidirectional streams the peer may open")
	fs.Int64Var(&c.MaxIncomingData, "max-data", 0, "bytes the peer may send on a session's streams")
	return c
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: webtransport-go-peer server|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "client":
		err = runClient(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		emit("error", map[string]any{"error": err.Error()})
		fmt.Fprintln(os.Stderr, "webtransport-go-peer:", err)
		os.Exit(1)
	}
}
