// Command clusterdns is the test cluster's DNS (.ci/setup-kubernetes.sh), in
// place of CoreDNS: it answers the names Kubernetes gives services and pods
// in the cluster domain, from the API server, so pods find each other as
// they do on any cluster (an Indexed Job's pod 0 as NAME-0.SERVICE). Names
// outside the cluster domain get REFUSED: the test cluster has no way out.
//
//	clusterdns -listen 10.244.0.1:53 -kubeconfig FILE
//
// Answered, under the domain (cluster.local):
//
//	SERVICE.NS.svc           the ClusterIP, or a headless service's pod IPs
//	HOST.SUBDOMAIN.NS.svc    the pod with that hostname and subdomain
//	A-B-C-D.NS.pod           the pod with IP A.B.C.D
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	listen := flag.String("listen", "10.244.0.1:53", "UDP address to answer on")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	domain := flag.String("domain", "cluster.local", "cluster domain")
	flag.Parse()
	if err := run(*listen, *kubeconfig, *domain); err != nil {
		fmt.Fprintln(os.Stderr, "clusterdns:", err)
		os.Exit(1)
	}
}

func run(listen, kubeconfig, domain string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); pc.Close() }()
	r := &resolver{cs: cs, suffix: "." + strings.Trim(domain, ".") + "."}
	log.Printf("answering %s on %s", r.suffix, pc.LocalAddr())
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if out, err := r.answer(qctx, q); err == nil {
				_, _ = pc.WriteTo(out, from)
			} else {
				log.Printf("query from %s: %v", from, err)
			}
		}()
	}
}

type resolver struct {
	cs     kubernetes.Interface
	suffix string // ".cluster.local."
}

func (r *resolver) answer(ctx context.Context, query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	resp := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	name := strings.ToLower(q.Name.String())
	var ips []netip.Addr
	switch {
	case q.Class != dnsmessage.ClassINET || !strings.HasSuffix(name, r.suffix):
		resp.Authoritative = false
		resp.RCode = dnsmessage.RCodeRefused
	default:
		found, addrs, err := r.lookup(ctx, strings.TrimSuffix(name, r.suffix))
		switch {
		case err != nil:
			log.Printf("%s: %v", name, err)
			resp.RCode = dnsmessage.RCodeServerFailure
		case !found:
			resp.RCode = dnsmessage.RCodeNameError
		default:
			ips = addrs
		}
	}
	b := dnsmessage.NewBuilder(nil, resp)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
	for _, ip := range ips {
		// A names found with no record of the asked type answer NOERROR
		// with no record, so resolvers go on to the A query.
		if q.Type == dnsmessage.TypeA && ip.Is4() {
			if err := b.AResource(rh, dnsmessage.AResource{A: ip.As4()}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

// lookup resolves a name under the cluster domain (without it): whether the
// name exists, and its IPv4 addresses.
func (r *resolver) lookup(ctx context.Context, name string) (bool, []netip.Addr, error) {
	parts := strings.Split(name, ".")
	switch {
	case len(parts) == 3 && parts[2] == "svc":
		return r.service(ctx, parts[1], parts[0])
	case len(parts) == 4 && parts[3] == "svc":
		return r.podByHost(ctx, parts[2], parts[1], parts[0])
	case len(parts) == 3 && parts[2] == "pod":
		ip, err := netip.ParseAddr(strings.ReplaceAll(parts[0], "-", "."))
		if err != nil {
			return false, nil, nil
		}
		pods, err := r.cs.CoreV1().Pods(parts[1]).List(ctx, metav1.ListOptions{FieldSelector: "status.podIP=" + ip.String()})
		if err != nil {
			return false, nil, err
		}
		return len(pods.Items) > 0, []netip.Addr{ip}, nil
	}
	return false, nil, nil
}

func (r *resolver) service(ctx context.Context, ns, name string) (bool, []netip.Addr, error) {
	svc, err := r.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, nil, notFound(err)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != "" {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		return err == nil, []netip.Addr{ip}, nil
	}
	if len(svc.Spec.Selector) == 0 {
		return true, nil, nil
	}
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return false, nil, err
	}
	var ips []netip.Addr
	for i := range pods.Items {
		if ip, ok := podIP(&pods.Items[i], svc.Spec.PublishNotReadyAddresses); ok {
			ips = append(ips, ip)
		}
	}
	return true, ips, nil
}

func (r *resolver) podByHost(ctx context.Context, ns, subdomain, host string) (bool, []netip.Addr, error) {
	svc, err := r.cs.CoreV1().Services(ns).Get(ctx, subdomain, metav1.GetOptions{})
	if err != nil {
		return false, nil, notFound(err)
	}
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.Hostname == host && p.Spec.Subdomain == subdomain {
			if ip, ok := podIP(p, svc.Spec.PublishNotReadyAddresses); ok {
				return true, []netip.Addr{ip}, nil
			}
		}
	}
	return false, nil, nil
}

// podIP is a running pod's address; a pod that is not ready has one only
// for services that publish not-ready addresses.
func podIP(p *corev1.Pod, notReady bool) (netip.Addr, bool) {
	if p.Status.PodIP == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return netip.Addr{}, false
	}
	if !notReady {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return netip.Addr{}, false
		}
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	return ip, err == nil
}

// notFound turns the API's not-found into "no such name".
func notFound(err error) error {
	var st interface{ Status() metav1.Status }
	if errors.As(err, &st) && st.Status().Code == 404 {
		return nil
	}
	return err
}
