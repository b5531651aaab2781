package kubernetes

import (
	"k8s.io/client-go/kubernetes"
)

// typedOf is a typed clientset for c's cluster: the tests read and write
// status with it, as the controllers do (lepton itself links only the
// dynamic client).
func typedOf(c *Client) kubernetes.Interface {
	cs, err := kubernetes.NewForConfig(c.REST)
	if err != nil {
		panic(err) // only a malformed config, which Connect would have refused
	}
	return cs
}
