package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// deepTree makes root/a.../a... nested until the full path is longer than
// PATH_MAX, creating each level relative to its parent's descriptor (the
// only way to build it). Reading the deepest directory by its path then
// fails even for root, which no permission bit can arrange.
func deepTree(t *testing.T, root string) {
	t.Helper()
	name := strings.Repeat("a", 250)
	fd, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for depth := 0; len(root)+depth*(len(name)+1) < 4200; depth++ {
		if err := syscall.Mkdirat(fd, name, 0o755); err != nil {
			syscall.Close(fd)
			t.Fatal(err)
		}
		next, err := syscall.Openat(fd, name, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		syscall.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	syscall.Close(fd)
}

// TestFmtWalkError: a directory fmt cannot read is reported with a
// non-zero exit, instead of -check passing over the files it never saw.
func TestFmtWalkError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.lep.hcl"), []byte("dataset \"d\" {\n  source {\n    inline = { x = [1] }\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		deep     bool
		args     []string
		code     int
		inStderr string
	}{
		{name: "readable tree", args: []string{"fmt", "-check", "-recursive", dir}, code: 0},
		{name: "unreadable subdirectory", deep: true, args: []string{"fmt", "-check", "-recursive", dir}, code: 1, inStderr: "file name too long"},
		// Without -recursive the subdirectory is skipped, not read.
		{name: "not recursive", deep: true, args: []string{"fmt", "-check", dir}, code: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.deep {
				if _, err := os.Stat(filepath.Join(dir, strings.Repeat("a", 250))); err != nil {
					deepTree(t, dir)
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &stdout, &stderr, []string{"NO_COLOR=1"})
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.inStderr)
			}
			if tc.code != 0 && !strings.HasPrefix(stderr.String(), "Error: ") {
				t.Errorf("stderr %q: want an Error: line", stderr.String())
			}
		})
	}
}
