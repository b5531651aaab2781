// Command ociregistry is the test cluster's image registry and image builder
// (.ci/setup-kubernetes.sh): go-containerregistry's registry on a loopback
// port, and a pusher of one-layer images made from files on this machine.
//
//	ociregistry serve -addr 127.0.0.1:5000 -dir /tmp/blobs
//	ociregistry push -repo 127.0.0.1:5000/lepton/busybox -tag 1 \
//	    -file /bin/busybox=/usr/bin/busybox -link /bin/sh=busybox -entrypoint /bin/sh
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/leptonml/lepton/internal/ociimage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ociregistry serve|push [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (serve, push)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ociregistry:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5000", "loopback address to listen on")
	dir := fs.String("dir", "", "folder for blobs (default: memory)")
	_ = fs.Parse(args)
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: only loopback addresses", *addr)
	}
	opts := []registry.Option{registry.Logger(log.New(os.Stderr, "", log.LstdFlags))}
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir)))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(opts...), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("registry on %s", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	repo := fs.String("repo", "", "repository, e.g. 127.0.0.1:5000/lepton/busybox")
	var tags, files, links, entry list
	fs.Var(&tags, "tag", "tag (repeatable)")
	fs.Var(&files, "file", "IMAGEPATH=HOSTPATH (repeatable)")
	fs.Var(&links, "link", "IMAGEPATH=TARGET symlink (repeatable)")
	fs.Var(&entry, "entrypoint", "entrypoint word (repeatable)")
	_ = fs.Parse(args)
	if *repo == "" {
		return errors.New("push: -repo is required")
	}
	var spec ociimage.Spec
	for _, f := range files {
		p, src, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("-file %q: want IMAGEPATH=HOSTPATH", f)
		}
		spec.Files = append(spec.Files, ociimage.File{Path: p, Source: src})
	}
	for _, l := range links {
		p, target, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("-link %q: want IMAGEPATH=TARGET", l)
		}
		spec.Files = append(spec.Files, ociimage.File{Path: p, Link: target})
	}
	spec.Entrypoint = entry
	img, err := ociimage.Build(spec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref, err := ociimage.Push(ctx, img, *repo, tags...)
	if err != nil {
		return err
	}
	fmt.Println(ref)
	return nil
}
