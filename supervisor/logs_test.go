package supervisor

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func texts(lines []Line) string {
	var out []string
	for _, ln := range lines {
		out = append(out, ln.Text)
	}
	return strings.Join(out, " ")
}

func TestLogsKeepTheLastLines(t *testing.T) {
	l := NewLogs(3)
	for i := range 5 {
		l.append(Line{Text: string(rune('a' + i))})
	}
	lines, next, changed := l.Read(0)
	if texts(lines) != "c d e" || next != 5 {
		t.Fatalf("got %q next %d", texts(lines), next)
	}
	select {
	case <-changed:
		t.Fatal("changed before a new line")
	default:
	}
	l.append(Line{Text: "f"})
	<-changed
	lines, _, _ = l.Read(next)
	if len(lines) != 1 || lines[0].Text != "f" || lines[0].Seq != 5 {
		t.Fatalf("follow read %+v", lines)
	}
}

// Lines may be as long as 64 KiB: the text a buffer keeps is bounded too, the oldest
// lines going first, and a single line longer than the bound is cut.
func TestLogsAreBoundedByBytes(t *testing.T) {
	l := newLogs(1000, 10)
	for _, text := range []string{"aaaa", "bbbb", "cc", "dddd"} {
		l.append(Line{Text: text})
	}
	lines, next, _ := l.Read(0)
	if texts(lines) != "bbbb cc dddd" || next != 4 || l.bytes != 10 {
		t.Fatalf("kept %q (%d bytes), next %d", texts(lines), l.bytes, next)
	}
	l.append(Line{Text: strings.Repeat("x", 64<<10)})
	lines, _, _ = l.Read(0)
	if len(lines) != 1 || lines[0].Text != strings.Repeat("x", 10) || lines[0].Seq != 4 {
		t.Fatalf("after a long line: %+v", lines)
	}
	// Reading from a sequence number that has gone starts at the oldest kept.
	if lines, _, _ := l.Read(1); len(lines) != 1 || lines[0].Seq != 4 {
		t.Fatalf("read from 1: %+v", lines)
	}
}

// A full buffer of 1000 lines of 64 KiB each once held 64 MiB; now it holds the default
// bound, whatever the lines, and its storage does not grow as lines come and go.
func TestAFloodOfLongLinesKeepsTheDefaultBound(t *testing.T) {
	l := NewLogs(1000)
	long := strings.Repeat("y", 64<<10)
	for range 3000 {
		l.append(Line{Text: long})
	}
	lines, _, _ := l.Read(0)
	if got := len(lines) * len(long); got > defaultLogBytes || len(lines) != defaultLogBytes/len(long) {
		t.Fatalf("%d lines, %d bytes kept", len(lines), got)
	}
	if cap(l.lines) > 4*len(lines) {
		t.Errorf("storage for %d lines", cap(l.lines))
	}
}

// A removed function's output stays readable a while, for whoever asks why it went, and
// is then freed; a function added back under the same name in the meantime continues it.
func TestRemovedFunctionsLogsAreFreedAfterAWhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "gone", nil)))
		s.Apply(one(pretendFunction(t, "back", nil)))
		synctest.Wait()
		s.Apply(nil)
		synctest.Wait()
		advance(keepRemovedLogs - time.Second)
		for _, name := range []string{"gone", "back"} {
			if _, ok := s.Logs(name); !ok {
				t.Fatalf("the logs of %s went before their time", name)
			}
		}
		s.Apply(one(pretendFunction(t, "back", nil)))
		advance(2 * time.Second)
		if _, ok := s.Logs("gone"); ok {
			t.Error("the logs of a removed function are never freed")
		}
		lines, _, _ := mustLogs(t, s, "back").Read(0)
		if len(lines) != 2 {
			t.Errorf("the function added back lost its earlier output: %+v", lines)
		}
	})
}
