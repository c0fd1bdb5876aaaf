package supervisor

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// diagListeners asks the kernel for the sockets that listen on port, through the
// sock_diag netlink interface that ss uses: filtered to listening sockets in the kernel,
// it costs the same however many connections the machine has, where /proc/net/tcp lists
// them all (milliseconds on a busy gateway, per replica start).
func diagListeners(port int, inodes map[uint64]bool) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := diagDump(fd, family, port, inodes); err != nil {
			return err
		}
	}
	return nil
}

// The layouts of linux/inet_diag.h.
const (
	sizeofSockID   = 48 // sport, dport, src[16], dst[16], if, cookie[2]
	sizeofDiagReq  = 8 + sizeofSockID
	sizeofDiagMsg  = 4 + sizeofSockID + 20 // ..., expires, rqueue, wqueue, uid, inode
	tcpListenState = 10                    // TCP_LISTEN
)

// diagDump sends one dump request of the listening TCP sockets of family on port, and
// reads the answers into inodes.
func diagDump(fd int, family uint8, port int, inodes map[uint64]bool) error {
	req := make([]byte, unix.SizeofNlMsghdr+sizeofDiagReq)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], 1<<tcpListenState)
	binary.BigEndian.PutUint16(r[8:], uint16(port)) // the kernel skips other listeners
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return nil
			}
			if len(m.Data) < sizeofDiagMsg {
				continue
			}
			d := m.Data
			if int(binary.BigEndian.Uint16(d[4:])) != port || d[1] != tcpListenState {
				continue
			}
			var ip netip.Addr
			if d[0] == unix.AF_INET {
				ip = netip.AddrFrom4([4]byte(d[8:12]))
			} else {
				ip = netip.AddrFrom16([16]byte(d[8:24]))
			}
			if acceptsLoopback(ip) {
				inodes[uint64(binary.NativeEndian.Uint32(d[4+sizeofSockID+16:]))] = true
			}
		}
	}
}
