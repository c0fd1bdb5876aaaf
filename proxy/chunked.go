package proxy

import (
	"bytes"
	"errors"
	"fmt"
)

// The chunked framing, read the same strict way from clients (fastBody) and from
// replicas (relayBody), and as net/http reads it: a gateway that accepts framing its
// neighbours read otherwise is where requests are smuggled. Every rule here is one that
// net/http's reader enforces too, so that the fast path never takes what net/http's
// server would refuse.

const (
	// maxChunkLine bounds a chunk's size line with its extensions, as net/http's.
	maxChunkLine = 4096
	// maxTrailer bounds the trailer fields after the last chunk, as net/http's server
	// does with the size of its read buffer.
	maxTrailer = 4096
	// maxChunkOverhead is how far the bytes of size lines may outgrow the data they
	// frame (16 bytes per chunk and twice its data are free), so that a sender cannot
	// make the gateway read mostly framing: net/http's allowance.
	maxChunkOverhead = 16 << 10
)

var (
	errChunkLine     = errors.New("malformed chunk size line")
	errChunkEnd      = errors.New("malformed chunked encoding: no CRLF after a chunk")
	errChunkOverhead = errors.New("chunked encoding contains too much non-data")
	errTrailerLine   = errors.New("malformed trailer")
)

// chunkSize reads a chunk's size line, its CRLF included: hexadecimal digits (at most
// 16, and the size within int64), then optionally spaces, tabs and a chunk extension
// after ';', which is ignored. A bare LF or a CR anywhere else ends nothing: it is an
// error, as in net/http since it closed the bare-LF smuggling hole.
func chunkSize(line []byte) (int64, error) {
	if len(line) < 3 || len(line) > maxChunkLine || line[len(line)-1] != '\n' ||
		bytes.IndexByte(line, '\r') != len(line)-2 {
		return 0, fmt.Errorf("%w %q", errChunkLine, line)
	}
	digits := line[:len(line)-2]
	if i := bytes.IndexByte(digits, ';'); i >= 0 {
		digits = digits[:i]
	} else {
		// Spaces and tabs may end the line: net/http trims them before it looks for
		// an extension, so "5 " is a size and "5 ;x" is not.
		digits = bytes.TrimRight(digits, " \t")
	}
	if len(digits) == 0 || len(digits) > 16 {
		return 0, fmt.Errorf("%w %q", errChunkLine, line)
	}
	var size uint64
	for _, c := range digits {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w %q", errChunkLine, line)
		}
		size = size<<4 | uint64(d)
	}
	if size > 1<<63-1 {
		return 0, fmt.Errorf("%w %q", errChunkLine, line)
	}
	return int64(size), nil
}

// chunkOverhead counts the framing of one chunk against its data, as net/http does, and
// reports when a sender has sent too much of it; excess carries the count.
func chunkOverhead(excess *int64, line int, size int64) error {
	*excess += int64(line) - 16 - 2*min(size, 1<<40)
	*excess = max(*excess, 0)
	if *excess > maxChunkOverhead {
		return errChunkOverhead
	}
	return nil
}

// trailerField reads one trailer line, its CRLF included: a field name, a colon and a
// value without control characters. The empty line that ends the trailer is not one.
func trailerField(line []byte) (k, v []byte, err error) {
	if len(line) < 2 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\r') != len(line)-2 {
		return nil, nil, fmt.Errorf("%w %q", errTrailerLine, line)
	}
	line = line[:len(line)-2]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !validToken(string(line[:colon])) {
		return nil, nil, fmt.Errorf("%w %q", errTrailerLine, line)
	}
	v = trimOWS(line[colon+1:])
	if !validValue(v) {
		return nil, nil, fmt.Errorf("%w %q", errTrailerLine, line)
	}
	return line[:colon], v, nil
}

// forbiddenTrailer reports the fields that must not come as trailers: framing, routing,
// authentication and the like, which a recipient would act on before the body, as
// net/http's client lists them.
func forbiddenTrailer(k string) bool {
	switch k {
	case "Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Length",
		"Content-Range", "Content-Type", "Expect", "Host", "Keep-Alive", "Max-Forwards",
		"Pragma", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Range",
		"Realm", "Te", "Trailer", "Transfer-Encoding", "Www-Authenticate", "Set-Cookie":
		return true
	}
	return false
}
