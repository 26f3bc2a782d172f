// Package proc reads what the benchmarks report about processes and the machine from Linux's /proc: CPU time by command
// name, and resets a process's peak RSS.
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

// CPUByName sums user+system CPU seconds of the running processes with the given command names, by name.
func CPUByName(names ...string) map[string]float64 {
	out := map[string]float64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces.
		open, end := strings.IndexByte(string(data), '('), strings.LastIndexByte(string(data), ')')
		if open < 0 || end < open {
			continue
		}
		name := string(data[open+1 : end])
		if !slices.Contains(names, name) {
			continue
		}
		f := strings.Fields(string(data[end+2:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[name] += (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
	}
	return out
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
