package gcp

import (
	"fmt"
	"strings"
)

// acceleratorTypes maps lepton GPU names (as in the offer catalog and the `gpu`
// argument) to Compute Engine accelerator type names. A bare name without memory
// picks the type GCP sells under that name.
var acceleratorTypes = map[string]string{
	"T4":             "nvidia-tesla-t4",
	"V100":           "nvidia-tesla-v100",
	"V100-16GB":      "nvidia-tesla-v100",
	"P100":           "nvidia-tesla-p100",
	"P100-16GB":      "nvidia-tesla-p100",
	"P4":             "nvidia-tesla-p4",
	"L4":             "nvidia-l4",
	"L4-24GB":        "nvidia-l4",
	"A100":           "nvidia-tesla-a100",
	"A100-40GB":      "nvidia-tesla-a100",
	"A100-80GB":      "nvidia-a100-80gb",
	"H100":           "nvidia-h100-80gb",
	"H100-80GB":      "nvidia-h100-80gb",
	"H100-MEGA":      "nvidia-h100-mega-80gb",
	"H200":           "nvidia-h200-141gb",
	"H200-141GB":     "nvidia-h200-141gb",
	"B200":           "nvidia-b200",
	"RTX-PRO-6000":   "nvidia-rtx-pro-6000",
	"RTXPRO6000":     "nvidia-rtx-pro-6000",
	"RTX-PRO-6000-S": "nvidia-rtx-pro-6000",
}

// AcceleratorType returns the GCP accelerator type name for a lepton GPU name
// such as "A100-80GB" (case-insensitive).
func AcceleratorType(gpuName string) (string, error) {
	key := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(gpuName), " ", "-"))
	if t, ok := acceleratorTypes[key]; ok {
		return t, nil
	}
	return "", fmt.Errorf("gcp: no Compute Engine accelerator type for GPU %q", gpuName)
}

// implicitGPUFamilies are machine families whose GPUs come with the machine type
// (A2, A3, A4, G2, G4): Compute Engine attaches them itself, and the insert must
// not list them as guest accelerators.
var implicitGPUFamilies = []string{"a2-", "a3-", "a4-", "a4x-", "g2-", "g4-"}

// HasImplicitGPUs reports whether machineType's GPUs are attached by the type itself.
func HasImplicitGPUs(machineType string) bool {
	for _, p := range implicitGPUFamilies {
		if strings.HasPrefix(machineType, p) {
			return true
		}
	}
	return false
}

// hyperdiskOnlyFamilies boot only from Hyperdisk; other GPU families take pd-balanced.
var hyperdiskOnlyFamilies = []string{"a3-ultragpu", "a4-", "a4x-", "g4-"}

func defaultDiskType(machineType string) string {
	for _, p := range hyperdiskOnlyFamilies {
		if strings.HasPrefix(machineType, p) {
			return "hyperdisk-balanced"
		}
	}
	return "pd-balanced"
}
