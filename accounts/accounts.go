// Package accounts gives every function and service that names no `user` an account of
// its own, the way systemd's DynamicUser= does: a user id, and the group id of the same
// number, from a reserved range ([gateway] user_range), stable per name and recorded in
// the state directory (STATE/users.json). Nothing is added to /etc/passwd or /etc/group:
// the kernel needs numbers, not names.
//
// An id is handed out only when no account, group or subordinate id range of this machine
// (/etc/passwd, /etc/group, /etc/subuid, /etc/subgid) has it, and it is checked again each
// time it is asked for, so that an account created later with the same number is noticed
// instead of sharing a function's files and processes. A name keeps its id for good: an
// id once given is never given to another name, even after its function is removed.
//
// It owns that record and nothing else: it starts no process and changes no file owner.
package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"faasd/config"
	"faasd/internal/atomicfile"
)

// Kind says what a name is: a function and a service may have the same name and still get
// accounts of their own.
type Kind string

// The kinds of names.
const (
	Function Kind = "function"
	Service  Kind = "service"
)

// Pool hands out the ids of one state directory.
type Pool struct {
	path string
	ids  config.IDRange
	db   Databases

	mu  sync.Mutex
	rec record
}

// record is STATE/users.json: the id of every name that ever had one.
type record struct {
	Functions map[string]uint32 `json:"functions"`
	Services  map[string]uint32 `json:"services"`
}

func (r *record) of(kind Kind) map[string]uint32 {
	if kind == Service {
		return r.Services
	}
	return r.Functions
}

// Open reads the record at path (none yet is an empty one) and checks that this daemon
// may use the ids of the range.
func Open(path string, ids config.IDRange) (*Pool, error) {
	return open(path, ids, SystemDatabases())
}

func open(path string, ids config.IDRange, db Databases) (*Pool, error) {
	p := &Pool{path: path, ids: ids, db: db, rec: record{Functions: map[string]uint32{}, Services: map[string]uint32{}}}
	if err := mapped(db.UIDMap, "user", ids); err != nil {
		return nil, err
	}
	if err := mapped(db.GIDMap, "group", ids); err != nil {
		return nil, err
	}
	// A write a crash interrupted left a temporary file; the record it was replacing is
	// intact.
	temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*"))
	for _, t := range temps {
		if atomicfile.IsTemp(filepath.Base(t)) {
			os.Remove(t)
		}
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if err := json.Unmarshal(data, &p.rec); err != nil {
		return nil, fmt.Errorf("accounts: %s: %w (it says which uid each function has: repair it rather than remove it, or every function gets a new uid)", path, err)
	}
	if p.rec.Functions == nil {
		p.rec.Functions = map[string]uint32{}
	}
	if p.rec.Services == nil {
		p.rec.Services = map[string]uint32{}
	}
	seen := map[uint32]string{}
	for _, kind := range []Kind{Function, Service} {
		for name, id := range p.rec.of(kind) {
			if other, dup := seen[id]; dup {
				return nil, fmt.Errorf("accounts: %s: %s %s and %s have the same id %d", path, kind, name, other, id)
			}
			seen[id] = string(kind) + " " + name
		}
	}
	return p, nil
}

// ID returns the user id of a function's or service's own account, which is also its
// group id: the recorded one, or else a new one, recorded before it is returned.
func (p *Pool) ID(kind Kind, name string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	taken, err := p.db.read()
	if err != nil {
		return 0, fmt.Errorf("accounts: %w", err)
	}
	if id, ok := p.rec.of(kind)[name]; ok {
		if owner := taken.owner(id); owner != "" {
			return 0, fmt.Errorf("accounts: %s %s has uid and gid %d, which is now also %s: remove that account, or remove the %s's line from %s while faasd is stopped to give it a new id", kind, name, id, owner, kind, p.path)
		}
		return int(id), nil
	}
	id, err := p.pick(kind, name, taken)
	if err != nil {
		return 0, err
	}
	p.rec.of(kind)[name] = id
	if err := p.save(); err != nil {
		delete(p.rec.of(kind), name)
		return 0, err
	}
	return int(id), nil
}

// pick finds a free id. The search starts at a hash of the name, as systemd does, so
// that a name tends to get the same id in every state directory.
func (p *Pool) pick(kind Kind, name string, taken *databases) (uint32, error) {
	given := map[uint32]bool{}
	for _, k := range []Kind{Function, Service} {
		for id := range maps.Values(p.rec.of(k)) {
			given[id] = true
		}
	}
	h := fnv.New32a()
	h.Write([]byte(string(kind) + "/" + name))
	size := uint32(p.ids.Size())
	start := h.Sum32() % size
	for i := range size {
		id := p.ids.First + (start+i)%size
		if !given[id] && taken.owner(id) == "" {
			return id, nil
		}
	}
	return 0, fmt.Errorf("accounts: no free id left in user_range %s for %s %s: %d are given (see %s), the rest belong to accounts or subordinate ranges of this machine; widen [gateway] user_range", p.ids, kind, name, len(given), p.path)
}

func (p *Pool) save() error {
	data, err := json.MarshalIndent(p.rec, "", "  ")
	if err != nil {
		return err
	}
	// Root's alone, like the rest of the state directory: it names every function.
	if err := atomicfile.Write(p.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	return nil
}
