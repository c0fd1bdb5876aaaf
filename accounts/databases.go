package accounts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"faasd/config"
)

// Databases are the files that say which ids this machine uses already.
type Databases struct {
	Passwd, Group  string // accounts and groups
	Subuid, Subgid string // subordinate ranges handed to users for their user namespaces
	// UIDMap and GIDMap are this process's user namespace maps: in a container, only the
	// ids they map exist.
	UIDMap, GIDMap string
}

// SystemDatabases are this machine's.
func SystemDatabases() Databases {
	return Databases{
		Passwd: "/etc/passwd", Group: "/etc/group", Subuid: "/etc/subuid", Subgid: "/etc/subgid",
		UIDMap: "/proc/self/uid_map", GIDMap: "/proc/self/gid_map",
	}
}

// databases is what the files said when they were read.
type databases struct {
	users, groups  map[uint32]string // id → name
	subuid, subgid []subrange
}

type subrange struct {
	owner       string
	first, size uint64
}

func (s subrange) contains(id uint32) bool {
	return s.first <= uint64(id) && uint64(id) < s.first+s.size
}

// owner names who has id already, or returns "" when it is free for a dynamic account:
// the same number must be free as a user id and as a group id.
func (d *databases) owner(id uint32) string {
	if name, ok := d.users[id]; ok {
		return fmt.Sprintf("account %s's in /etc/passwd", name)
	}
	if name, ok := d.groups[id]; ok {
		return fmt.Sprintf("group %s's in /etc/group", name)
	}
	for _, s := range d.subuid {
		if s.contains(id) {
			return fmt.Sprintf("in the subordinate uids of %s (/etc/subuid)", s.owner)
		}
	}
	for _, s := range d.subgid {
		if s.contains(id) {
			return fmt.Sprintf("in the subordinate gids of %s (/etc/subgid)", s.owner)
		}
	}
	return ""
}

// read reads the files; one that does not exist holds nothing (most machines have no
// /etc/subuid).
func (db Databases) read() (*databases, error) {
	d := &databases{}
	var err error
	if d.users, err = readIDs(db.Passwd); err != nil {
		return nil, err
	}
	if d.groups, err = readIDs(db.Group); err != nil {
		return nil, err
	}
	if d.subuid, err = readSubranges(db.Subuid); err != nil {
		return nil, err
	}
	if d.subgid, err = readSubranges(db.Subgid); err != nil {
		return nil, err
	}
	return d, nil
}

// readIDs reads the name and id (the third field) of each entry of a passwd or group file.
func readIDs(path string) (map[uint32]string, error) {
	ids := map[uint32]string{}
	err := eachLine(path, func(fields []string) {
		if len(fields) < 3 {
			return
		}
		if id, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
			ids[uint32(id)] = fields[0]
		}
	})
	return ids, err
}

// readSubranges reads /etc/subuid or /etc/subgid: owner:first:count.
func readSubranges(path string) ([]subrange, error) {
	var out []subrange
	err := eachLine(path, func(fields []string) {
		if len(fields) != 3 {
			return
		}
		first, err1 := strconv.ParseUint(fields[1], 10, 32)
		size, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, subrange{owner: fields[0], first: first, size: size})
		}
	})
	return out, err
}

// eachLine calls fn with the colon-separated fields of every line that is not empty or a
// comment.
func eachLine(path string, fn func(fields []string)) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// mapped checks that the user (or group) namespace this process runs in maps every id of
// the range: a daemon in a container may have only 65536 ids, and setuid to any other
// fails.
func mapped(path, what string, ids config.IDRange) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no /proc: the first start says what is wrong
	}
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	var spans []subrange
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var inside, outside, size uint64
		if _, err := fmt.Sscan(line, &inside, &outside, &size); err == nil && size > 0 {
			spans = append(spans, subrange{first: inside, size: size})
			names = append(names, fmt.Sprintf("%d-%d", inside, inside+size-1))
		}
	}
	// The maps (at most a few) may come in any order: extend the covered part of the range
	// until no map extends it further.
	next := uint64(ids.First)
	for extended := true; extended && next <= uint64(ids.Last); {
		extended = false
		for _, s := range spans {
			if s.first <= next && next < s.first+s.size {
				next, extended = s.first+s.size, true
			}
		}
	}
	if next <= uint64(ids.Last) {
		return fmt.Errorf("[gateway] user_range %s: this daemon runs in a user namespace (a container) that has only the %s ids %s: choose a user_range inside them", ids, what, strings.Join(names, ", "))
	}
	return nil
}
