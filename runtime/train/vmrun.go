package train

import (
	"fmt"
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// syncRunner runs a compiled gorgonia tape program on the calling goroutine.
//
// Why: tapeMachine.RunAll locks the caller's OS thread (a CUDA requirement)
// and runs the program on a new goroutine, so every step costs two OS thread
// wake-ups. On a busy machine those wake-ups, not arithmetic, dominated a
// step (8 ms wall for 3 ms of CPU in the MNIST MLP). tapeMachine.Run executes
// the same instructions synchronously, but takes the program as its
// unexported fragment type; we obtain that value by reflection. If a
// gorgonia upgrade changes those internals, newSyncRunner returns nil and
// the caller keeps using RunAll, which is correct, only slower.
type syncRunner struct {
	run  reflect.Value
	args []reflect.Value
}

func newSyncRunner(vm G.VM, prog any) *syncRunner {
	pv := reflect.ValueOf(prog)
	if pv.Kind() != reflect.Pointer || pv.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := pv.Elem().FieldByName("instructions")
	run := reflect.ValueOf(vm).MethodByName("Run")
	if !f.IsValid() || !run.IsValid() || run.Type().NumIn() != 1 || run.Type().In(0) != f.Type() {
		return nil
	}
	frag := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	return &syncRunner{run: run, args: []reflect.Value{frag}}
}

func (s *syncRunner) runOnce() error {
	out := s.run.Call(s.args)
	if err, _ := out[0].Interface().(error); err != nil {
		return fmt.Errorf("gorgonia: %w", err)
	}
	return nil
}
