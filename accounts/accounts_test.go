package accounts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"faasd/config"
)

// machine is a set of account databases in files of a test's own.
type machine struct {
	t   *testing.T
	dir string
	db  Databases
}

func newMachine(t *testing.T) *machine {
	dir := t.TempDir()
	m := &machine{t: t, dir: dir, db: Databases{
		Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group"),
		Subuid: filepath.Join(dir, "subuid"), Subgid: filepath.Join(dir, "subgid"),
		UIDMap: filepath.Join(dir, "uid_map"), GIDMap: filepath.Join(dir, "gid_map"),
	}}
	m.write(m.db.Passwd, "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	m.write(m.db.Group, "root:x:0:\nnogroup:x:65534:\n")
	m.write(m.db.UIDMap, "         0          0 4294967295\n")
	m.write(m.db.GIDMap, "         0          0 4294967295\n")
	return m
}

func (m *machine) write(path, text string) {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) append(path, text string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) open(ids config.IDRange) *Pool {
	m.t.Helper()
	p, err := open(filepath.Join(m.dir, "users.json"), ids, m.db)
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

func mustID(t *testing.T, p *Pool, kind Kind, name string) int {
	t.Helper()
	id, err := p.ID(kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEachNameGetsItsOwnIDThatSurvivesARestart(t *testing.T) {
	m := newMachine(t)
	p := m.open(config.DefaultUserRange)
	ids := map[int]string{}
	for _, n := range []struct {
		kind Kind
		name string
	}{{Function, "hello"}, {Function, "guestbook"}, {Service, "hello"}, {Service, "mariadb"}} {
		id := mustID(t, p, n.kind, n.name)
		if !config.DefaultUserRange.Contains(uint32(id)) {
			t.Errorf("%s %s: id %d outside the range", n.kind, n.name, id)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("%s %s has the id of %s: %d", n.kind, n.name, other, id)
		}
		ids[id] = string(n.kind) + " " + n.name
		if again := mustID(t, p, n.kind, n.name); again != id {
			t.Errorf("%s %s: %d, then %d", n.kind, n.name, id, again)
		}
	}
	// A restart reads the record: every name keeps its id.
	p2 := m.open(config.DefaultUserRange)
	for id, who := range ids {
		kind, name, _ := strings.Cut(who, " ")
		if got := mustID(t, p2, Kind(kind), name); got != id {
			t.Errorf("%s: %d after a restart, was %d", who, got, id)
		}
	}
	fi, err := os.Stat(filepath.Join(m.dir, "users.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users.json: %v %v, want mode 0600", fi, err)
	}
}

// A name's id comes from a hash of it, so two state directories agree unless collisions
// got in the way; the id is not the order of arrival.
func TestANameGetsTheSameIDInAFreshStateDir(t *testing.T) {
	a := newMachine(t).open(config.DefaultUserRange)
	b := newMachine(t).open(config.DefaultUserRange)
	mustID(t, a, Function, "first")
	if x, y := mustID(t, a, Function, "hello"), mustID(t, b, Function, "hello"); x != y {
		t.Errorf("hello: %d in one state dir, %d in another", x, y)
	}
}

// Accounts, groups and subordinate ranges of the machine are never handed out; in a
// range of five ids, four are taken each in one of those ways, and every name would start
// its search at a taken one or the free one.
func TestIDsTheMachineUsesAreSkipped(t *testing.T) {
	m := newMachine(t)
	m.append(m.db.Passwd, "alice:x:70000:100::/home/alice:/bin/sh\n")
	m.append(m.db.Group, "team:x:70001:\n")
	m.write(m.db.Subuid, "# comment\nbob:70002:1\n")
	m.write(m.db.Subgid, "carol:70003:1\n")
	ids := config.IDRange{First: 70000, Last: 70004}
	p := m.open(ids)
	if id := mustID(t, p, Function, "fn"); id != 70004 {
		t.Fatalf("got %d, want the one free id 70004", id)
	}
	_, err := p.ID(Function, "another")
	if err == nil || !strings.Contains(err.Error(), "no free id left in user_range 70000-70004") || !strings.Contains(err.Error(), "widen [gateway] user_range") {
		t.Fatalf("a full range: %v", err)
	}
	// The failed allocation left the record as it was.
	if got := mustID(t, m.open(ids), Function, "fn"); got != 70004 {
		t.Errorf("fn after a failed allocation: %d", got)
	}
}

// An id stays its name's even after the name is gone from the configuration: a new name
// never inherits the files or processes an old one may have left.
func TestIDsAreNeverGivenToAnotherName(t *testing.T) {
	m := newMachine(t)
	ids := config.IDRange{First: 70000, Last: 70001}
	p := m.open(ids)
	old := mustID(t, p, Function, "old")
	if id := mustID(t, m.open(ids), Function, "new"); id == old {
		t.Fatalf("new got the id of old, %d", id)
	}
	if _, err := m.open(ids).ID(Service, "third"); err == nil {
		t.Fatal("a third name got an id from a range of two")
	}
}

// An account created with a function's id after the fact would share its processes and
// files: the function is refused its id until the operator resolves it.
func TestARecordedIDThatBecameAnAccountIsRefused(t *testing.T) {
	m := newMachine(t)
	p := m.open(config.DefaultUserRange)
	id := mustID(t, p, Function, "fn")
	m.append(m.db.Passwd, "dave:x:"+strconv.Itoa(id)+":100::/home/dave:/bin/sh\n")
	_, err := p.ID(Function, "fn")
	if err == nil || !strings.Contains(err.Error(), "now also account dave's in /etc/passwd") || !strings.Contains(err.Error(), "users.json") {
		t.Fatalf("error %v", err)
	}
}

func TestRangesOutsideTheUserNamespaceAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, uidMap string
		ids          config.IDRange
		wantErr      string
	}{
		{"the whole id space", "0 0 4294967295\n", config.DefaultUserRange, ""},
		{"a container of 64k ids", "0 100000 65536\n", config.DefaultUserRange, "that has only the user ids 0-65535"},
		{"a range inside a container's ids", "0 100000 65536\n", config.IDRange{First: 60578, Last: 61183}, ""},
		{"two maps out of order", "70000 300000 30000\n0 100000 70000\n", config.DefaultUserRange, ""},
		{"a hole between two maps", "0 100000 70000\n70001 300000 30000\n", config.DefaultUserRange, "0-69999, 70001-100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t)
			m.write(m.db.UIDMap, tc.uidMap)
			_, err := open(filepath.Join(m.dir, "users.json"), tc.ids, m.db)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// A damaged record is reported, never replaced: replacing it would give functions the
// ids of others.
func TestADamagedRecordIsReportedAndKept(t *testing.T) {
	for name, text := range map[string]string{
		"not JSON":     `{"functions": {"a": 70000`,
		"one id twice": `{"functions": {"a": 70000}, "services": {"b": 70000}}`,
	} {
		t.Run(name, func(t *testing.T) {
			m := newMachine(t)
			path := filepath.Join(m.dir, "users.json")
			m.write(path, text)
			if _, err := open(path, config.DefaultUserRange, m.db); err == nil {
				t.Fatal("opened")
			}
			if got, _ := os.ReadFile(path); string(got) != text {
				t.Errorf("the record changed to %q", got)
			}
		})
	}
}

// Functions and services ask for ids from their own goroutines.
func TestConcurrentNamesGetDistinctIDs(t *testing.T) {
	m := newMachine(t)
	p := m.open(config.IDRange{First: 70000, Last: 70063})
	var wg sync.WaitGroup
	got := make([]int, 64)
	errs := make([]error, 64)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = p.ID(Function, "fn-"+strconv.Itoa(i)) })
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, id := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[id] {
			t.Fatalf("id %d given twice: %v", id, got)
		}
		seen[id] = true
	}
	var rec record
	data, _ := os.ReadFile(filepath.Join(m.dir, "users.json"))
	if err := json.Unmarshal(data, &rec); err != nil || len(rec.Functions) != 64 {
		t.Fatalf("record %s: %v", data, err)
	}
}

// A crash during a write leaves a temporary file beside the record, which the next start
// removes; the record itself is whole.
func TestATemporaryFileOfACrashedWriteIsRemoved(t *testing.T) {
	m := newMachine(t)
	id := mustID(t, m.open(config.DefaultUserRange), Function, "fn")
	tmp := filepath.Join(m.dir, ".users.json.12345.tmp")
	m.write(tmp, `{"functions": {`)
	if got := mustID(t, m.open(config.DefaultUserRange), Function, "fn"); got != id {
		t.Errorf("fn: %d, was %d", got, id)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file: %v", err)
	}
}
