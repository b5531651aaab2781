package serve

import "runtime"

func runtimeGosched() { runtime.Gosched() }
