package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A line as the kernel writes it (proc(5)): utime 250 and stime 75 clock ticks are 3.25 s; the command name holds a
	// space and a parenthesis.
	line := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1207 0 0 0 250 75 0 0 20 0 9 0 123 456 789\n"
	st, ok := parseStat(line)
	if want := (stat{name: "my (odd) cmd", ppid: 1, cpu: 3.25}); !ok || st != want {
		t.Fatalf("parseStat = %+v, %v; want %+v, true", st, ok, want)
	}
	for _, bad := range []string{"", "4242 (cut", "4242 (short) S 1 2 3", "4242 (nan) S 1 4242 4242 0 -1 4194560 1207 0 0 0 x y 0"} {
		if _, ok := parseStat(bad); ok {
			t.Errorf("parseStat(%q) reported a line with CPU times", bad)
		}
	}
}

func TestCPUReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Work until the kernel has counted a clock tick of CPU for this process (10 ms), within the test's deadline.
	for deadline, x := time.Now().Add(10*time.Second), 0; CPU(os.Getpid()) == 0; x++ {
		if time.Now().After(deadline) {
			t.Fatalf("CPU(self) still 0 after 10 s of work (%d)", x)
		}
	}
	if got := CPU(-1); got != 0 {
		t.Fatalf("CPU of no process = %v, want 0", got)
	}
}

func TestChildrenListsAChildOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if got := Children(os.Getpid()); !slices.Contains(got, cmd.Process.Pid) {
		t.Fatalf("Children(self) = %v, want it to hold %d", got, cmd.Process.Pid)
	}
	if got := Children(cmd.Process.Pid); len(got) != 0 {
		t.Fatalf("Children(sleep) = %v, want none", got)
	}
}
