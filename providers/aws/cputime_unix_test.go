//go:build unix

package aws_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the process has used. Benchmarks report
// it besides wall time because the machine they run on is shared and oversubscribed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
