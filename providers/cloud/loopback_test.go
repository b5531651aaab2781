package cloud

import "testing"

func TestIsLoopback(t *testing.T) {
	cases := map[string]bool{
		"http://127.0.0.1:8080":           true,
		"http://127.3.4.5/x":              true,
		"http://[::1]:9000":               true,
		"http://localhost:10000/devstore": true,
		"https://compute.googleapis.com":  false,
		"https://management.azure.com/":   false,
		"http://10.0.0.1":                 false,
		"http://localhost.example.com":    false,
		"::not a url":                     false,
		"":                                false,
	}
	for endpoint, want := range cases {
		if got := IsLoopback(endpoint); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", endpoint, got, want)
		}
	}
}
