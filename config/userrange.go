package config

import (
	"fmt"
	"strconv"
	"strings"
)

// IDRange is a range of user and group ids, both ends included: [gateway] user_range, from
// which each function and service without a `user` gets an account of its own.
type IDRange struct {
	First, Last uint32
}

// DefaultUserRange lies in the gap that systemd's table of id ranges (UIDS-GIDS.md) leaves
// unused between the 16-bit boundary and the container ranges: above every system and
// regular account that adduser hands out (at most 60000), above systemd's home (60001-
// 60577) and dynamic service (61184-65519) ranges and the special 65534 and 65535, below
// 100000, where /etc/subuid and /etc/subgid ranges start by default, and far below
// systemd-nspawn's container ranges (from 524288).
var DefaultUserRange = IDRange{First: 65536, Last: 99999}

// Size is how many ids the range holds.
func (r IDRange) Size() int { return int(r.Last-r.First) + 1 }

// Contains reports whether id is in the range.
func (r IDRange) Contains(id uint32) bool { return r.First <= id && id <= r.Last }

func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// reservedIDs are ranges no user_range may overlap: their ids belong to accounts that
// faasd cannot see in /etc/passwd (systemd makes them up at run time, or they are
// special to the kernel), so a collision would go unnoticed.
var reservedIDs = []struct {
	r    IDRange
	what string
}{
	{IDRange{0, 999}, "system accounts"},
	{IDRange{60001, 60577}, "systemd-homed's and systemd-nspawn's accounts"},
	{IDRange{61184, 65519}, "systemd's dynamic service accounts (DynamicUser=)"},
	{IDRange{65534, 65535}, "nobody and the 16-bit -1"},
	{IDRange{524288, 1879048191}, "systemd-nspawn's container ranges"},
	// Many programs and file systems mishandle ids from 2^31 up (systemd's UIDS-GIDS.md).
	{IDRange{1 << 31, 1<<32 - 1}, "ids from 2^31 up, which many programs mishandle"},
}

// parseIDRange reads "FIRST-LAST".
func parseIDRange(s string) (IDRange, error) {
	first, last, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return IDRange{}, fmt.Errorf("user_range: %q is not a range: want FIRST-LAST, as %q", s, DefaultUserRange.String())
	}
	a, errA := strconv.ParseUint(strings.TrimSpace(first), 10, 32)
	b, errB := strconv.ParseUint(strings.TrimSpace(last), 10, 32)
	if errA != nil || errB != nil {
		return IDRange{}, fmt.Errorf("user_range: %q is not a range: want two user ids, FIRST-LAST, as %q", s, DefaultUserRange.String())
	}
	r := IDRange{First: uint32(a), Last: uint32(b)}
	if r.First > r.Last {
		return IDRange{}, fmt.Errorf("user_range: %q starts above its end", s)
	}
	for _, res := range reservedIDs {
		if r.First <= res.r.Last && res.r.First <= r.Last {
			return IDRange{}, fmt.Errorf("user_range: %s overlaps %d-%d, %s: choose ids outside it (the default is %s)", r, res.r.First, res.r.Last, res.what, DefaultUserRange)
		}
	}
	return r, nil
}
