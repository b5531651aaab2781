package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceAccountName is the account a cluster's pods run as.
const ServiceAccountName = "lepton"

// ClusterNamespace is the namespace a cluster owns when the provider block
// names none: lepton-NAME-LINEAGE8, so two states never share one.
func ClusterNamespace(address, lineage string) string {
	name := strings.TrimPrefix(address, "cluster.")
	if len(lineage) > 8 {
		lineage = lineage[:8]
	}
	return ObjectName("lepton-" + name + "-" + lineage)
}

// EnsureCluster applies what a cluster owns: its namespace (when owned), the
// service account its pods run as and, when q bounds something, a
// ResourceQuota.
func EnsureCluster(ctx context.Context, c *Client, m Meta, ownNamespace bool, q Quota) error {
	if ownNamespace {
		if err := applyRetrying(ctx, c, Namespace(m)); err != nil {
			return err
		}
	}
	if _, err := c.Apply(ctx, ServiceAccount(m, ServiceAccountName)); err != nil {
		return err
	}
	if q != (Quota{}) {
		rq, err := ResourceQuota(m, "lepton", q)
		if err != nil {
			return err
		}
		if _, err := c.Apply(ctx, rq); err != nil {
			return err
		}
	}
	return nil
}

// applyRetrying applies a namespace, waiting while an earlier one of the
// same name is still being deleted (a cluster destroyed and created again).
func applyRetrying(ctx context.Context, c *Client, ns *corev1.Namespace) error {
	for {
		_, err := c.Apply(ctx, ns)
		if err == nil || !strings.Contains(err.Error(), "being terminated") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// NamespaceExists reports whether ns exists and is not being deleted.
func NamespaceExists(ctx context.Context, c *Client, ns string) (bool, error) {
	n, err := Get[corev1.Namespace](ctx, c, "Namespace", "", ns)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kubernetes: namespace %s: %w", ns, err)
	}
	return n.DeletionTimestamp == nil, nil
}

// DeleteSelected deletes every object lepton creates in ns that matches the
// label selector sel (an address's objects, or a lineage's), pods with
// their Jobs and ReplicaSets. It does not wait for the pods to end.
func DeleteSelected(ctx context.Context, c *Client, ns, sel string) error {
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	list := metav1.ListOptions{LabelSelector: sel}
	var errs []error
	for _, kind := range []string{"Deployment", "Job", "Service", "Secret", "ResourceQuota", "ServiceAccount"} {
		r := resources[kind]
		err := c.Dynamic.Resource(r.gvr).Namespace(ns).DeleteCollection(ctx, opts, list)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("kubernetes: delete %ss (%s) in %s: %w", kind, sel, ns, err))
		}
	}
	// Services have no deletecollection verb on every version: delete
	// them one by one as well.
	svcs, err := List[corev1.Service](ctx, c, "Service", ns, sel)
	if err == nil {
		for _, s := range svcs {
			if err := c.Delete(ctx, "Service", ns, s.Name); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("kubernetes: delete service %s/%s: %w", ns, s.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// DeleteNamespace deletes ns and waits until it is gone (its objects with
// it), at most until ctx ends.
func DeleteNamespace(ctx context.Context, c *Client, ns string) error {
	err := c.Delete(ctx, "Namespace", "", ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubernetes: delete namespace %s: %w", ns, err)
	}
	for {
		_, err := Get[corev1.Namespace](ctx, c, "Namespace", "", ns)
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes: namespace %s is still being deleted: %w", ns, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Labeled lists "Kind namespace/name" of every object lepton creates that
// matches sel in ns (all namespaces when ns is ""), namespaces included.
func Labeled(ctx context.Context, c *Client, ns, sel string) ([]string, error) {
	var out []string
	for _, kind := range []string{"Namespace", "ServiceAccount", "ResourceQuota", "Secret", "Service", "Job", "Deployment"} {
		r := resources[kind]
		var list interface {
			UnstructuredContent() map[string]any
		}
		var err error
		if r.namespaced {
			list, err = c.Dynamic.Resource(r.gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		} else {
			list, err = c.Dynamic.Resource(r.gvr).List(ctx, metav1.ListOptions{LabelSelector: sel})
		}
		if err != nil {
			return nil, fmt.Errorf("kubernetes: list %ss: %w", kind, err)
		}
		items, _ := list.UnstructuredContent()["items"].([]any)
		for _, it := range items {
			md, _ := it.(map[string]any)["metadata"].(map[string]any)
			if md["deletionTimestamp"] != nil {
				continue
			}
			name, _ := md["name"].(string)
			if n, _ := md["namespace"].(string); n != "" {
				name = n + "/" + name
			}
			out = append(out, kind+" "+name)
		}
	}
	return out, nil
}

// WaitGone waits until no Job, Deployment, ReplicaSet or pod matching sel
// is left in ns (the garbage collector deletes dependents in the
// background, and pods take their grace period), at most until ctx ends.
func WaitGone(ctx context.Context, c *Client, ns, sel string) error {
	for {
		left := 0
		for _, kind := range []string{"Job", "Deployment", "ReplicaSet", "Pod"} {
			ri, err := c.resource(kind, ns)
			if err != nil {
				return err
			}
			l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return fmt.Errorf("kubernetes: list %ss (%s) in %s: %w", kind, sel, ns, err)
			}
			left += len(l.Items)
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubernetes: %d object(s) of %s in %s are still being deleted: %w", left, sel, ns, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
