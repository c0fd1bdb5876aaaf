package supervisor

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A replica's port is free when the supervisor picks it and bound by the replica some time
// later. Any local process may bind it in between, and would then receive the function's
// requests, credentials and all, while the replica fails to bind or serves nobody. So a
// replica is ready only when the sockets that listen where the gateway connects
// (127.0.0.1:PORT) are all held by processes of the replica's own group.

var errPortTaken = errors.New("the port is not the replica's")

// portCheck confirms that a replica's group (leader: its program) holds its port.
type portCheck func(g group, leader, port int) error

// ownsPort is the portCheck of this machine: the listening sockets come from
// /proc/net/tcp and tcp6, which name each by inode; a process holds a socket when one of
// its descriptors in /proc/PID/fd links to socket:[INODE].
func ownsPort(g group, leader, port int) error {
	want, err := listeners(port)
	if err != nil {
		return err
	}
	if len(want) == 0 {
		return fmt.Errorf("%w: nothing listens on port %d", errPortTaken, port)
	}
	// Most programs listen themselves; the group is searched for a child that does.
	held(leader, want)
	if len(want) > 0 {
		pids, err := g.pids()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			if pid != leader && len(want) > 0 {
				held(pid, want)
			}
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("%w: port %d is held by %s, outside the replica", errPortTaken, port, holders(want))
	}
	return nil
}

// listeners returns the inodes of the sockets that listen on port and would accept a
// connection to 127.0.0.1: on 127.0.0.1 or any address, in IPv4 or as IPv6 that takes
// IPv4 too. It asks the kernel (diagListeners), or reads /proc/net/tcp and tcp6 where
// that is not allowed (a seccomp filter may refuse netlink).
func listeners(port int) (map[uint64]bool, error) {
	inodes := map[uint64]bool{}
	if diagListeners(port, inodes) == nil {
		return inodes, nil
	}
	clear(inodes)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 here
		}
		if err != nil {
			return nil, fmt.Errorf("find who listens on port %d: %w", port, err)
		}
		err = parseListeners(f, port, inodes)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("find who listens on port %d: %s: %w", port, table, err)
		}
	}
	return inodes, nil
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// parseListeners reads a /proc/net/tcp or tcp6 table into inodes:
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode
//	0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 ...
func parseListeners(r io.Reader, port int, inodes map[uint64]bool) error {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		addr, p, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(p, 16, 16); err != nil || int(n) != port {
			continue
		}
		ip, err := procAddr(addr)
		if err != nil {
			return err
		}
		if !acceptsLoopback(ip) {
			continue
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return fmt.Errorf("inode %q: %w", fields[9], err)
		}
		inodes[inode] = true
	}
	return sc.Err()
}

// acceptsLoopback reports whether a socket listening on ip takes connections to
// 127.0.0.1.
func acceptsLoopback(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsUnspecified() || ip == netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// procAddr decodes an address of /proc/net/tcp: the kernel prints each 32-bit word of
// it as a number in the machine's byte order.
func procAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, fmt.Errorf("address %q: not 4 or 16 bytes in hex", s)
	}
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(b[i:]))
	}
	ip, _ := netip.AddrFromSlice(b)
	return ip, nil
}

// held removes from want the sockets that pid holds.
func held(pid int, want map[uint64]bool) {
	fds := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fds)
	if err != nil {
		return // gone, or not ours to look at: it holds nothing we can vouch for
	}
	for _, e := range entries {
		if inode, ok := socketInode(filepath.Join(fds, e.Name())); ok {
			delete(want, inode)
		}
	}
}

func socketInode(fd string) (uint64, bool) {
	link, err := os.Readlink(fd)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	inode, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return inode, err == nil
}

// holders names the processes that hold the sockets, for the operator: a search of
// every process, done only when a port is found taken.
func holders(sockets map[uint64]bool) string {
	var found []string
	eachProcess(func(pid int) bool {
		rest := maps.Clone(sockets)
		if held(pid, rest); len(rest) < len(sockets) {
			comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
			found = append(found, fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm))))
		}
		return true
	})
	if len(found) == 0 {
		return "a process this daemon cannot see"
	}
	return strings.Join(found, ", ")
}
