// Package proc reads what the benchmarks report about processes and the machine from Linux's /proc: CPU time by command
// name or process id, a process's children, and resets a process's peak RSS.
package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// CPUByName sums user+system CPU seconds of the running processes with the given command names, by name: every process
// of that name on the machine, the benchmark's or not.
func CPUByName(names ...string) map[string]float64 {
	out := map[string]float64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if st, ok := parseStat(string(data)); ok && slices.Contains(names, st.name) {
			out[st.name] += st.cpu
		}
	}
	return out
}

// CPU is the user+system CPU seconds process pid has used so far (0 once it is gone).
func CPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	st, _ := parseStat(string(data))
	return st.cpu
}

// Children are the ids of the running processes whose parent is pid.
func Children(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if st, ok := parseStat(string(data)); ok && st.ppid == pid {
			if child, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

// stat is what a /proc/<pid>/stat line says of a process: its command name, its parent, and its user+system CPU
// seconds.
type stat struct {
	name string
	ppid int
	cpu  float64
}

// parseStat reads a /proc/<pid>/stat line, and reports whether the line had the command name, parent and CPU times.
func parseStat(line string) (stat, bool) {
	// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces and parentheses.
	open, end := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || end < open || end+2 > len(line) {
		return stat{}, false
	}
	f := strings.Fields(line[end+2:])
	if len(f) < 13 {
		return stat{}, false
	}
	ppid, err0 := strconv.Atoi(f[1])
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return stat{}, false
	}
	return stat{name: line[open+1 : end], ppid: ppid, cpu: (utime + stime) / 100}, true // clock ticks (USER_HZ = 100)
}

// ResetPeakRSS resets the VmHWM of process pid to its current RSS (clear_refs 5).
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// Machine describes the machine the figures come from.
func Machine() string {
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(info), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	var si syscall.Sysinfo_t
	_ = syscall.Sysinfo(&si)
	return fmt.Sprintf("%s, %d cores, %.0f GiB, %s", cpu, runtime.NumCPU(), float64(si.Totalram)*float64(si.Unit)/(1<<30), runtime.Version())
}
