// Command backend is the replica bench/proxy.sh measures through: it serves HTTP on
// $PORT, answers a GET with "Hello, world!" as examples/hello-go does, and echoes the
// body of any other request once it has read it whole. It writes /tmp/.lock once it
// accepts connections, for faasd's readiness.
package main

import (
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("/tmp/.lock", nil, 0o644); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(serve)}
	log.Fatal(srv.Serve(ln))
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello, world!\n")
		return
	}
	// Read whole, then written back, as a function that transforms its input does.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
