// Package proc reads what the benchmarks report about processes and the machine from Linux's /proc: CPU time by command
// name or process id, and resets a process's peak RSS.
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
		if name, secs, ok := parseStat(string(data)); ok && slices.Contains(names, name) {
			out[name] += secs
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
	_, secs, _ := parseStat(string(data))
	return secs
}

// parseStat reads the command name and user+system CPU seconds from a /proc/<pid>/stat line, and reports whether the
// line had them.
func parseStat(stat string) (name string, secs float64, ok bool) {
	// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces and parentheses.
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 > len(stat) {
		return "", 0, false
	}
	f := strings.Fields(stat[end+2:])
	if len(f) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return stat[open+1 : end], (utime + stime) / 100, true // clock ticks (USER_HZ = 100 on Linux)
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
