package state_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/statetest"
)

func TestLocalConformance(t *testing.T) {
	dir := statetest.Dir(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		return state.NewLocal(filepath.Join(dir, strings.ReplaceAll(key, "/", "_")+".json"))
	})
}
