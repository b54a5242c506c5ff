//go:build unix

package lease

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// machine names this process's kernel boot and PID namespace: two
// processes with the same machine see the same PIDs.
func machine() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
}

// gone reports whether the lease's holder is a process of this machine
// that no longer exists, so that its lease need not run out. A PID reused
// by another process counts as alive: the lease then simply expires.
func gone(h, me Holder) bool {
	if h.Machine == "" || h.Machine != me.Machine || h.Host != me.Host || h.PID <= 0 || h.PID == me.PID {
		return false
	}
	return errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH)
}
